"""Liveness and the rules version; readiness (rules loaded, database answering)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.deps import RuntimeDep
from service.observability import readiness

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    rules_version: str
    engine: str
    programs: int


class Readiness(BaseModel):
    status: str
    rules_version: str
    database: str


@router.get(
    "/healthz", response_model=Health, summary="存活与规则版本 / Liveness and rules version"
)
async def healthz(rt: RuntimeDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "rules_version": rt.book.version,
        "engine": rt.evaluator.name,
        "programs": len(rt.book.programs),
    }


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="就绪：规则已加载、数据库可连接 / Readiness: rules loaded, database reachable",
    responses={503: {"description": "未就绪，说明缺少什么 / not ready, naming what is missing"}},
)
def readyz(rt: RuntimeDep) -> dict[str, Any]:
    # A plain def: FastAPI runs it in a worker thread, so a slow database never blocks the loop.
    readiness.check(rt)
    return {"status": "ready", "rules_version": rt.book.version, "database": "ok"}

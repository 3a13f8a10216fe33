"""Liveness and the rules version; readiness (rules loaded, database answering at the migrations'
head, the engine's answer to the canary application right)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

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
    schema_revision: str = Field(description="数据库迁移版本（即最新版本） / the schema's revision")
    engine: str = Field(
        description="ok：示例申报的引擎结论与参照实现一致 / ok: the engine's answer to a known "
        "application agrees with the oracle's"
    )


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
    summary=(
        "就绪：规则已加载、数据库可连接且已迁移、引擎结论正确 / "
        "Readiness: rules loaded, database reachable and migrated, engine answering right"
    ),
    responses={503: {"description": "未就绪，说明缺少什么 / not ready, naming what is missing"}},
)
def readyz(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    # A plain def: FastAPI runs it in a worker thread, so a slow database never blocks the loop.
    ready = readiness.check(rt, request.app.state.canary)
    return {
        "status": "ready",
        "rules_version": rt.book.version,
        "database": ready["database"],
        "schema_revision": ready["schema"],
        "engine": ready["engine"],
    }

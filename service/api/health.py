"""Liveness and the rules version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    rules_version: str
    engine: str
    programs: int


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

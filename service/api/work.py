"""/v1/admin/work: the large check / calculate evaluations in flight in this process's worker
processes (service.evaluation), for admins: list them, cancel one still queued."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from service.api.deps import RuntimeDep
from service.auth.guard import require
from service.auth.roles import Role
from service.db.models import MAX_ID

router = APIRouter(
    prefix="/v1/admin/work", tags=["admin"], dependencies=[Depends(require(Role.admin))]
)
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="任务编号 / job id", examples=[1])]


class JobOut(BaseModel):
    id: int
    program_id: str
    body_bytes: int
    request_id: str | None
    submitted_at: str
    state: str  # queued | running (| cancelled, in the answer to a cancellation)


@router.get(
    "",
    response_model=list[JobOut],
    summary="进行中的大型评估（本进程） / Large evaluations in flight (this process)",
)
async def list_work(rt: RuntimeDep) -> list[dict[str, Any]]:
    return rt.workers.jobs()


@router.post(
    "/{job_id}/cancellation",
    response_model=JobOut,
    summary="取消排队中的评估 / Cancel a queued evaluation",
    responses={
        404: {"description": "未知或已完成的任务 / unknown or finished job"},
        409: {"description": "已在执行 / already running"},
    },
)
async def cancel_work(job_id: JobId, rt: RuntimeDep) -> dict[str, Any]:
    return rt.workers.cancel(job_id)

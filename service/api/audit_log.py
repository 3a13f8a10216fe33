"""/v1/admin/audit-log: the hash-chained record of every change (service.auditlog), for admins,
oldest first, paged by ``after`` (the last ``seq`` seen)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service import auditlog
from service.api.deps import RuntimeDep
from service.auth.guard import require
from service.auth.roles import Role

router = APIRouter(
    prefix="/v1/admin/audit-log", tags=["admin"], dependencies=[Depends(require(Role.admin))]
)


class ActorOut(BaseModel):
    key_id: int | None
    name: str


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: ActorOut
    action: str = Field(examples=["approval.approve"])
    entity: str
    entity_id: str
    payload: dict[str, object]
    prev_hash: str
    hash: str = Field(description="sha256(prev_hash + 本行规范JSON) / of the row's canonical JSON")


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="下一页的 after；null 为最后一页 / the next page")


@router.get(
    "",
    response_model=AuditPage,
    summary="审计日志（哈希链） / The audit log (hash-chained)",
    description=(
        "每项变更（申报、评审、轮次、分配、第二十六条名单、API密钥）按顺序记录，每行含上一行的哈希；"
        "`python -m service.auditlog verify` 校验整条链。 / Every change (applications, approvals, "
        "rounds, allocations, the 第二十六条 list, API keys) in order, each row holding the "
        "previous row's hash; `python -m service.auditlog verify` checks the chain."
    ),
)
def read_audit_log(
    rt: RuntimeDep,
    after: Annotated[int, Query(ge=0, description="从此序号之后 / after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    with rt.db.transaction(write=False) as session:
        rows = auditlog.rows(session, after, limit)
    return JSONResponse(
        {
            "entries": [auditlog.view(r) for r in rows],
            "next_after": rows[-1].seq if len(rows) == limit else None,
        }
    )

"""/v1/admin/disqualifications: the 第二十六条 list. Entries are added and removed, never deleted:
a removal records who removed the entry, when and why."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import RuntimeDep
from service.api.openapi import json_body
from service.api.strict import JSON_BODY, read_json
from service.auditlog import Actor
from service.auth.guard import require
from service.auth.roles import Principal, Role
from service.clock import ClockDep, shanghai
from service.db import disqualifications as repo
from service.db.models import MAX_ID, Disqualification
from service.schemas.body import validate_body
from service.schemas.types import USCC, PlainParagraph, PlainText

router = APIRouter(prefix="/v1/admin/disqualifications", tags=["admin"])
Admin = Annotated[Principal, Depends(require(Role.admin))]

EntryId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="名单条目编号 / list entry id", examples=[1])
]


class DisqualificationAdd(BaseModel):
    """列入第二十六条名单 / put an organisation on the 第二十六条 list."""

    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    reason: PlainParagraph = Field(min_length=1, max_length=2000)
    decided_on: date = Field(description="取消资格决定的日期 / date of the decision")
    added_by: PlainText | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="已弃用，忽略：登记人取自密钥 / ignored: who adds it is the key's name",
    )


class DisqualificationRemoval(BaseModel):
    """移出名单（保留记录） / take an entry off the list (the record stays)."""

    model_config = ConfigDict(extra="forbid")

    removed_by: PlainText | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="已弃用，忽略：移出人取自密钥 / ignored: who removes it is the key's name",
    )
    reason: PlainParagraph = Field(min_length=1, max_length=2000)


class DisqualificationOut(BaseModel):
    id: int
    uscc: str
    reason: str
    decided_on: str
    added_by: str
    added_at: str
    received_at: str
    active: bool
    removed_at: str | None
    removed_by: str | None
    removal_reason: str | None


def _view(entry: Disqualification) -> dict[str, Any]:
    return {
        "id": entry.id,
        "uscc": entry.uscc,
        "reason": entry.reason,
        "decided_on": entry.decided_on.isoformat(),
        "added_by": entry.added_by,
        "added_at": shanghai(entry.added_at),
        "received_at": shanghai(entry.added_at),
        "active": entry.removed_at is None,
        "removed_at": shanghai(entry.removed_at),
        "removed_by": entry.removed_by,
        "removal_reason": entry.removal_reason,
    }


@router.get(
    "",
    response_model=list[DisqualificationOut],
    summary="第二十六条名单 / The 第二十六条 disqualification list",
)
def list_disqualifications(
    rt: RuntimeDep,
    _: Admin,
    include_removed: Annotated[
        bool, Query(description="含已移出的条目 / include removed entries")
    ] = False,
) -> JSONResponse:
    with rt.db.transaction(write=False) as session:
        return JSONResponse([_view(e) for e in repo.entries(session, include_removed)])


@router.post(
    "",
    status_code=201,
    response_model=DisqualificationOut,
    summary="列入名单 / Add an organisation to the list",
    openapi_extra=json_body(
        DisqualificationAdd,
        {
            "fraud": {
                "summary": "编造虚假交易 / fabricated transactions",
                "value": {
                    "uscc": "91310000MA1FL9Y9Y8",
                    "reason": "编造虚假许可交易骗取第十九条奖补 / fabricated licences for 第十九条",
                    "decided_on": "2023-05-10",
                },
            }
        },
        "单位、理由、决定日期与登记人 / organisation, reason, date, who adds it",
    ),
    responses={
        **JSON_BODY,
        409: {"description": "已在名单中 / already listed"},
        422: {"description": "请求有误"},
    },
)
async def add_disqualification(
    request: Request, rt: RuntimeDep, admin: Admin, clock: ClockDep
) -> JSONResponse:
    body = validate_body(DisqualificationAdd, await read_json(request, rt.settings.max_body_bytes))

    def work() -> dict[str, Any]:
        with rt.db.transaction() as session:
            actor = Actor(admin.key_id, admin.name)
            entry = repo.add(
                session, body.uscc, body.reason, body.decided_on, admin.name, actor, clock()
            )
            return _view(entry)

    return JSONResponse(await run_in_threadpool(work), status_code=201)


@router.post(
    "/{entry_id}/removal",
    response_model=DisqualificationOut,
    summary="移出名单（记录保留） / Remove an entry (the record stays)",
    openapi_extra=json_body(
        DisqualificationRemoval,
        {
            "appeal": {
                "summary": "复议撤销 / overturned on appeal",
                "value": {"reason": "行政复议撤销原决定"},
            }
        },
        "移出人与理由 / who removes it and why",
    ),
    responses={
        **JSON_BODY,
        404: {"description": "未知条目 / unknown entry"},
        409: {"description": "已移出 / already removed"},
    },
)
async def remove_disqualification(
    entry_id: EntryId, request: Request, rt: RuntimeDep, admin: Admin, clock: ClockDep
) -> JSONResponse:
    body = validate_body(
        DisqualificationRemoval, await read_json(request, rt.settings.max_body_bytes)
    )

    def work() -> dict[str, Any]:
        with rt.db.transaction() as session:
            actor = Actor(admin.key_id, admin.name)
            return _view(repo.remove(session, entry_id, admin.name, body.reason, actor, clock()))

    return JSONResponse(await run_in_threadpool(work))

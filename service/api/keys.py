"""/v1/admin/keys: API keys, for admins (the same as ``python -m service.auth``). A new key is
returned once, in the response that creates it; only its SHA-256 is stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import RuntimeDep
from service.api.openapi import json_body
from service.api.strict import JSON_BODY, read_json
from service.auditlog import Actor
from service.auth import keys
from service.auth.guard import require
from service.auth.roles import Principal, Role
from service.clock import ClockDep
from service.db.models import MAX_ID
from service.schemas.body import validate_body
from service.schemas.types import PlainText

Admin = Annotated[Principal, Depends(require(Role.admin))]
router = APIRouter(prefix="/v1/admin/keys", tags=["admin"])
KeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="密钥编号 / key id", examples=[1])]


class KeyCreate(BaseModel):
    """新建API密钥 / a new API key."""

    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field(min_length=1, max_length=200, description="持有者 / who holds it")
    role: Role
    applicants: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description=(
            'portal 密钥代为申报的单位（统一社会信用代码；"*" 为全部单位） / portal keys: the '
            'applicants it acts for (USCCs; "*" for every applicant)'
        ),
    )


class KeyOut(BaseModel):
    id: int
    prefix: str
    name: str
    role: str
    applicants: list[str]
    created_by: str
    created_at: str
    received_at: str
    active: bool
    revoked_at: str | None
    revoked_by: str | None


class NewKey(KeyOut):
    key: str = Field(description="密钥本身，仅此一次显示 / the key itself, shown this once")


@router.get("", response_model=list[KeyOut], summary="API密钥列表 / List API keys")
def list_keys(rt: RuntimeDep, _: Admin) -> JSONResponse:
    with rt.db.transaction(write=False) as session:
        return JSONResponse([keys.view(row) for row in keys.listed(session)])


@router.post(
    "",
    status_code=201,
    response_model=NewKey,
    summary="新建API密钥 / Create an API key",
    openapi_extra=json_body(
        KeyCreate,
        {
            "portal": {
                "summary": "绑定一家单位的门户 / a portal acting for one applicant",
                "value": {
                    "name": "某区企业服务门户",
                    "role": "portal",
                    "applicants": ["91310000MA1FL8XQ37"],
                },
            },
            "reviewer": {
                "summary": "评审人员 / a reviewer",
                "value": {"name": "运营处 评审组", "role": "reviewer"},
            },
        },
        "持有者、角色与绑定单位 / holder, role, applicants",
    ),
    responses={**JSON_BODY, 422: {"description": "请求有误 / bad field"}},
)
async def create_key(
    request: Request, rt: RuntimeDep, admin: Admin, clock: ClockDep
) -> JSONResponse:
    body = validate_body(KeyCreate, await read_json(request, rt.settings.max_body_bytes))
    req = keys.KeyRequest(body.name, body.role, tuple(body.applicants), admin.name)

    def work() -> dict[str, Any]:
        with rt.db.transaction() as session:
            row, key = keys.create(session, req, Actor(admin.key_id, admin.name), clock())
            return {**keys.view(row), "key": key}

    return JSONResponse(await run_in_threadpool(work), status_code=201)


@router.post(
    "/{key_id}/revocation",
    response_model=KeyOut,
    summary="吊销API密钥 / Revoke an API key",
    responses={
        404: {"description": "未知密钥 / unknown key"},
        409: {
            "description": "已吊销，或是最后一个管理员密钥 / already revoked, or the last admin key"
        },
    },
)
def revoke_key(key_id: KeyId, rt: RuntimeDep, admin: Admin, clock: ClockDep) -> JSONResponse:
    actor = Actor(admin.key_id, admin.name)
    with rt.db.transaction() as session:
        return JSONResponse(keys.view(keys.revoke(session, key_id, admin.name, actor, clock())))

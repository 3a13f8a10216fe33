"""/v1/rounds: open a funding round (with its overrides, such as 第二十一条's tier amounts),
allocate it (the claims ledger, 一次性, quotas, then the program pool and 第三条's fund across its
approved, eligible applications) and close it once its funds are disbursed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import json_body
from service.api.strict import JSON_BODY, read_json
from service.auditlog import Actor
from service.auth.guard import require
from service.auth.roles import Principal, Role
from service.clock import ClockDep
from service.db import rounds as repo
from service.db.models import MAX_ID
from service.errors import InvalidRequest
from service.money import fmt
from service.rules.award_plan import Tiers
from service.rules.program import Program
from service.schemas.body import validate_body
from service.schemas.types import Money, PlainText

router = APIRouter(prefix="/v1/rounds", tags=["rounds"])
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]

RoundId = Annotated[int, Path(ge=1, le=MAX_ID, description="轮次编号 / round id", examples=[1])]
Tier = Annotated[int, Field(ge=1, le=99)]


class RoundOverrides(BaseModel):
    """本轮确定、规则未定的数值 / numbers the bureau sets per round, not the rules."""

    model_config = ConfigDict(extra="forbid")

    tier_amounts: dict[Tier, Money] | None = Field(
        default=None,
        description="第二十一条各等次奖补金额 / 第二十一条's amount per performance tier",
        examples=[{"1": "100000.00", "2": "60000.00", "3": "30000.00"}],
    )


class RoundCreate(BaseModel):
    """开设评审轮次 / open a funding round."""

    model_config = ConfigDict(extra="forbid")

    program_id: str = Field(min_length=1, max_length=100, examples=["ipa2022-art21"])
    name: PlainText = Field(min_length=1, max_length=200, examples=["2023年第一批"])
    overrides: RoundOverrides = Field(default_factory=RoundOverrides)


class AllocationLineOut(BaseModel):
    application_id: int
    applicant_uscc: str
    applicant_name: str | None
    submitted_at: str
    received_at: str
    evaluation_id: int
    entitlement: str = Field(
        description="按规则应得金额（不含已由更早申报申领的项） / the award the rules give, "
        "without items paid to an earlier claim"
    )
    amount: str = Field(description="分配金额 / the amount allocated")
    items: list[str] = Field(description="本行支付的申领项 / the claimed items this line pays")


class ExcludedOut(BaseModel):
    application_id: int
    reason: str = Field(
        description="not_approved | not_eligible | disqualified (第二十六条) | no_entitlement | "
        "once_per_unit (一次性) | items_claimed_elsewhere (第二十五条)"
    )
    message_zh: str
    message_en: str


class WarningOut(BaseModel):
    rule: str = Field(
        description="quota | pro-rata | pool-exhausted | fund-exhausted | nothing-approved"
    )
    article: str
    message_zh: str
    message_en: str
    limit: int | str | None = None
    count: int | None = None
    ratio: str | None = None


class FundOut(BaseModel):
    article: str
    total: str = Field(description="第三条专项资金总额 / the special fund")
    allocated_elsewhere: str
    left: str = Field(description="本次分配后剩余 / what is left after this allocation")


class AllocationOut(BaseModel):
    round_id: int
    program_id: str
    run: int | None = Field(
        description="第几次分配；内容不变时重复分配返回同一次；null：未记录 / the recorded run "
        "(null: nothing was recorded)"
    )
    allocated_at: str | None
    closed: bool
    pool: str | None = Field(description="项目奖补总额 / the program pool, null if none")
    allocated_in_other_rounds: str | None
    available: str | None
    pool_left: str | None = Field(description="本次分配后项目剩余 / the pool left after it")
    total_entitlement: str
    total: str
    allocations: list[AllocationLineOut]
    warnings: list[WarningOut]


class AllocationResult(AllocationOut):
    fund: FundOut | None
    excluded: list[ExcludedOut]
    items_checked: int = Field(description="账本核对的申领项数 / ledger claims checked")


class RoundOut(BaseModel):
    id: int
    program_id: str
    name: str
    overrides: dict[str, Any]
    created_at: str
    received_at: str
    closed_at: str | None
    applications: int
    allocation: AllocationOut | None


def _tier_problem(program: Program, overrides: RoundOverrides) -> str | None:
    tiered = isinstance(program.plan.base, Tiers)
    if tiered and not overrides.tier_amounts:
        return (
            f"{program.id} 的各等次金额须在开设轮次时确定 / "
            f"{program.id} pays by tier: the round must set tier_amounts"
        )
    if not tiered and overrides.tier_amounts is not None:
        return f"{program.id} 不分等次 / {program.id} has no tiers"
    pool = program.parameters.get("pool")
    above = [
        tier
        for tier, amount in sorted((overrides.tier_amounts or {}).items())
        if pool is not None and amount > pool.value
    ]
    if above and pool is not None:
        return (
            f"等次{above}的金额超过本项目奖补总额{fmt(pool.value)}元（{pool.article}） / "
            f"the amount of tier(s) {above} exceeds the program pool {fmt(pool.value)} "
            f"({pool.article})"
        )
    return None


def _stored_overrides(program: Program, overrides: RoundOverrides) -> dict[str, Any]:
    if overrides.tier_amounts is None:
        return {}
    base = program.plan.base
    name = base.param if isinstance(base, Tiers) else "tier_amounts"
    return {name: {str(k): fmt(v) for k, v in sorted(overrides.tier_amounts.items())}}


def _round(rt: Runtime, round_id: int) -> dict[str, Any]:
    with rt.db.transaction(write=False) as session:
        return repo.round_view(session, repo.get(session, round_id))


@router.post(
    "",
    status_code=201,
    response_model=RoundOut,
    summary="开设评审轮次 / Open a funding round",
    openapi_extra=json_body(
        RoundCreate,
        {
            "ipa2022-art21": {
                "summary": "第二十一条：本轮各等次金额 / tier amounts for this round",
                "value": {
                    "program_id": "ipa2022-art21",
                    "name": "2023年度托管绩效奖补",
                    "overrides": {
                        "tier_amounts": {"1": "100000.00", "2": "60000.00", "3": "30000.00"}
                    },
                },
            },
            "ipa2022-art20": {
                "summary": "第二十条：商业银行质押绩效奖补 / bank pledge-loan rewards",
                "value": {"program_id": "ipa2022-art20", "name": "2023年第一批"},
            },
        },
        "项目、名称与本轮数值 / program, name and the round's numbers",
    ),
    responses={
        **JSON_BODY,
        404: {"description": "未知项目 / unknown program"},
        422: {"description": "请求有误"},
    },
)
async def create_round(
    request: Request, rt: RuntimeDep, reviewer: Reviewer, clock: ClockDep
) -> JSONResponse:
    body = validate_body(RoundCreate, await read_json(request, rt.settings.max_body_bytes))
    program = rt.program(body.program_id)
    problem = _tier_problem(program, body.overrides)
    if problem is not None:
        raise InvalidRequest(
            [
                {
                    "loc": ["body", "overrides", "tier_amounts"],
                    "path": "overrides.tier_amounts",
                    "type": "value_error",
                    "msg": problem,
                }
            ]
        )
    overrides = _stored_overrides(program, body.overrides)

    def work() -> dict[str, Any]:
        actor = Actor(reviewer.key_id, reviewer.name)
        round_ = repo.create(rt.db, program, body.name, overrides, actor, clock())
        assert round_.id is not None
        return _round(rt, round_.id)

    return JSONResponse(await run_in_threadpool(work), status_code=201)


@router.get(
    "/{round_id}",
    response_model=RoundOut,
    summary="轮次及其当前分配 / A round and its current allocation",
    responses={404: {"description": "未知轮次 / unknown round"}},
)
def get_round(round_id: RoundId, rt: RuntimeDep, _: Reviewer) -> JSONResponse:
    return JSONResponse(_round(rt, round_id))


@router.post(
    "/{round_id}/allocate",
    response_model=AllocationResult,
    summary="分配本轮：名额与项目总额 / Allocate the round: quotas and the program pool",
    description=(
        "取本轮已批准且符合条件的申报：硬性名额超出时返回409并按提交顺序列出超出者（由评审决定撤回"
        "哪些）；软性名额只提示；项目总额按应得金额比例分配，每份向下取整到分，余下的分按最大余数"
        "逐一分配（余数相同时先提交者、编号小者优先）。内容不变时重复分配结果相同。 / Takes the "
        "round's approved, eligible applications. A hard quota that is exceeded is a 409 listing "
        "the applications beyond it in submission order (the reviewers choose whom to withdraw); "
        "a soft quota warns. The program pool is shared pro rata to entitlement, each share "
        "rounded down to the fen, the leftover fen going one each to the largest remainders "
        "(ties: earlier received_at, then lower id). Each claimed item (patent, loan, contract) "
        "is paid once across the program: to the application whose allocation already pays "
        "it, else to the earliest approved, eligible claim; 一次性 programs pay each "
        "organisation once; all ipa2022 programs together stay within 第三条's fund. "
        "Allocating again with nothing changed returns the same recorded run; a closed round "
        "is a 409."
    ),
    responses={
        404: {"description": "未知轮次 / unknown round"},
        409: {"description": "超出硬性名额，或轮次已结项 / a hard quota is exceeded, or closed"},
    },
)
def allocate_round(
    round_id: RoundId, rt: RuntimeDep, reviewer: Reviewer, clock: ClockDep
) -> JSONResponse:
    def siblings(program: Program) -> list[str]:
        return sorted(p.id for p in rt.book.programs.values() if p.policy == program.policy)

    actor = Actor(reviewer.key_id, reviewer.name)
    return JSONResponse(repo.allocate(rt.db, rt.program, siblings, round_id, actor, clock()))


@router.post(
    "/{round_id}/closure",
    response_model=RoundOut,
    summary="结项：本轮资金已拨付 / Close the round: its funds are disbursed",
    description=(
        "结项后不能再分配（409），其分配金额继续计入项目总额与专项资金。 / A closed round can "
        "no longer be allocated (409); its amounts keep counting against the pool and the fund."
    ),
    responses={
        404: {"description": "未知轮次 / unknown round"},
        409: {"description": "已结项或尚未分配 / already closed, or never allocated"},
    },
)
def close_round(
    round_id: RoundId, rt: RuntimeDep, reviewer: Reviewer, clock: ClockDep
) -> JSONResponse:
    repo.close(rt.db, round_id, Actor(reviewer.key_id, reviewer.name), clock())
    return JSONResponse(_round(rt, round_id))

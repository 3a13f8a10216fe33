"""/v1/applications: store and evaluate an application (idempotently), read it back with its
evaluations, re-evaluate it under the rules in force, and record the reviewer's decision."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, WithJsonSchema

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import FILLERS, FORMS, PLACEHOLDER, json_body, program_examples
from service.api.strict import JSON_BODY, read_json
from service.auth.guard import require
from service.auth.roles import Principal, Role
from service.db import applications as repo
from service.db.models import MAX_ID
from service.errors import InvalidRequest, NotBound, NotFound
from service.observability import count_evaluation
from service.rules.loader import RuleBook
from service.schemas.body import error_detail, path_of, validate_body
from service.schemas.forms import Application as Form
from service.schemas.performance import TrancheStatus
from service.schemas.results import CalculateResult
from service.schemas.types import PlainParagraph, PlainText
from service.stage_reports import tranches

router = APIRouter(prefix="/v1/applications", tags=["applications"])

ApplicationId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="申报编号 / application id", examples=[1])
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description=(
            "重试时发送同一个键：返回第一次的结果，不重复存储；同一个键配不同内容为409 / "
            "send the same key when retrying: the first result is returned and nothing is "
            "stored twice; the same key with a different body is a 409"
        ),
        examples=["3f1c2a9e-7b4d-4e55-9a61-0c2f5d8e4b10"],
    ),
]
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "未知申报或项目 / unknown application or program"},
    422: {"description": "请求有误 / bad field"},
}


class ApplicationSubmission(BaseModel):
    """提交申报 / an application to store and evaluate."""

    model_config = ConfigDict(extra="forbid")

    program_id: str = Field(min_length=1, max_length=100, examples=["ipa2022-art20"])
    application: Annotated[
        dict[str, Any],
        WithJsonSchema(
            {
                "description": "申报材料，表单随项目而定 / the application; its form depends on the program",
                **FORMS,
            }
        ),
    ]
    round_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="所属评审轮次 / the funding round it is submitted to",
    )


class ReviewDecision(BaseModel):
    """评审结论 / the reviewer's decision (择优遴选 is the reviewers', not the service's)."""

    model_config = ConfigDict(extra="forbid")

    approved: StrictBool
    reviewed_by: PlainText | None = Field(default=None, min_length=1, max_length=200)
    note: PlainParagraph | None = Field(default=None, max_length=2000)


class ReviewOut(BaseModel):
    approved: bool
    reviewed_by: str | None
    reviewed_at: str
    note: str | None


class EvaluationOut(CalculateResult):
    id: int
    evaluated_at: str


class EvaluationSummary(BaseModel):
    id: int
    rules_version: str
    evaluated_at: str
    eligible: bool
    award_amount: str | None


class StoredApplication(BaseModel):
    id: int
    program_id: str
    round_id: int | None
    applicant_uscc: str
    submitted_at: str
    received_at: str
    idempotency_key: str | None
    application: dict[str, Any] = Field(
        description="申报时提交的内容 / the application as submitted"
    )
    review: ReviewOut | None
    evaluation: EvaluationOut = Field(description="最近一次评估 / the latest evaluation")
    evaluations: list[EvaluationSummary] = Field(
        description="历次评估，旧结论从不覆盖 / every evaluation; none is ever overwritten"
    )
    tranches: list[TrancheStatus] = Field(
        default_factory=list, description="各期拨款状态 / where each tranche stands"
    )


def _submission_examples(book: RuleBook) -> dict[str, Any]:
    chosen = ["ipa2022-art20", "ipa2022-art19", "ipa2022-art06", "stcsm2023-tech-transfer"]
    examples = program_examples(book)
    return {
        pid: {
            "summary": f"{pid}：{examples[pid]['summary']}",
            "value": {"program_id": pid, "application": examples[pid]["value"]},
        }
        for pid in chosen
        if pid in examples
    }


FILLERS["submissions"] = _submission_examples


def _validate_application(form: type[Form], data: Any) -> Form:
    """The application against its program's form; paths start at ``application``."""
    try:
        return form.model_validate(data)
    except ValidationError as exc:
        detail = error_detail(exc, ("body", "application"))
        for d in detail:
            d["path"] = path_of(["application", *d["loc"][2:]])
        raise InvalidRequest(detail) from exc


def _rules(rt: Runtime) -> repo.Rules:
    return repo.Rules(rt.evaluator, rt.book.version)


Portal = Annotated[Principal, Depends(require(Role.portal))]
Reader = Annotated[Principal, Depends(require(Role.reviewer, Role.portal))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]


def _record(rt: Runtime, application_id: int, reader: Principal) -> dict[str, Any]:
    """The stored application, if ``reader`` may see it; otherwise the same 404 as a missing
    one (another portal's application is not even confirmed to exist)."""
    with rt.db.transaction(write=False) as session:
        stored = repo.get(session, application_id)
        if not reader.may_read(stored.applicant_uscc):
            raise NotFound("申报", "application", application_id)
        return {**repo.record(session, stored), "tranches": tranches(session, stored)}


@router.post(
    "",
    status_code=201,
    response_model=StoredApplication,
    summary="提交并评估申报 / Store and evaluate an application",
    description=(
        "存储申报并按现行规则评估；带 Idempotency-Key 的重试返回第一次的结果。 / Stores the "
        "application and evaluates it under the rules in force; a retry with the same "
        "Idempotency-Key returns the first result (header Idempotent-Replayed: true)."
    ),
    openapi_extra=json_body(
        ApplicationSubmission,
        {PLACEHOLDER: "submissions"},
        "项目、申报材料与轮次 / program, application, round",
    ),
    responses={**RESPONSES, **JSON_BODY, 409: {"description": "幂等键已用于不同内容 / key reused"}},
)
async def submit_application(
    request: Request, rt: RuntimeDep, portal: Portal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    body = validate_body(
        ApplicationSubmission, await read_json(request, rt.settings.max_body_bytes)
    )
    program = rt.program(body.program_id)
    application = _validate_application(program.form, body.application)
    if not portal.acts_for(application.applicant.uscc):
        raise NotBound(application.applicant.uscc)
    submission = repo.Submission(
        program=program,
        application=application,
        request=repo.jsonable(body.application),
        round_id=body.round_id,
        idempotency_key=idempotency_key,
        submitted_by=portal.key_id,
    )

    def work() -> tuple[dict[str, Any], bool]:
        stored, replayed = repo.submit(rt.db, _rules(rt), submission)
        assert stored.id is not None
        return _record(rt, stored.id, portal), replayed

    record, replayed = await run_in_threadpool(work)
    if not replayed:
        count_evaluation(request.app, program.id, record["evaluation"]["eligible"])
    return JSONResponse(
        record, status_code=201, headers={"Idempotent-Replayed": json.dumps(replayed)}
    )


@router.get(
    "/{application_id}",
    response_model=StoredApplication,
    summary="读取申报及其评估 / A stored application with its evaluations",
    responses=RESPONSES,
)
def get_application(application_id: ApplicationId, rt: RuntimeDep, reader: Reader) -> JSONResponse:
    return JSONResponse(_record(rt, application_id, reader))


@router.post(
    "/{application_id}/evaluations",
    status_code=201,
    response_model=StoredApplication,
    summary="按现行规则重新评估 / Evaluate again under the rules in force",
    description=(
        "新增一条评估记录（注明规则版本），原有结论保留。 / Adds an evaluation under the rules "
        "loaded now, with their version; earlier decisions are kept as they were."
    ),
    responses={**RESPONSES, 409: {"description": "按现行表单已存内容无效 / no longer valid"}},
)
def reevaluate_application(
    application_id: ApplicationId, request: Request, rt: RuntimeDep, reader: Reader
) -> JSONResponse:
    _record(rt, application_id, reader)  # 404 unless the caller may see it
    repo.reevaluate(rt.db, _rules(rt), rt.program, application_id)
    record = _record(rt, application_id, reader)
    count_evaluation(request.app, record["program_id"], record["evaluation"]["eligible"])
    return JSONResponse(record, status_code=201)


@router.post(
    "/{application_id}/approval",
    response_model=StoredApplication,
    summary="记录评审结论 / Record the reviewer's decision",
    openapi_extra=json_body(
        ReviewDecision,
        {
            "approve": {
                "summary": "批准 / approve",
                "value": {"approved": True, "reviewed_by": "评审专家组 / review panel"},
            },
            "reject": {
                "summary": "不予批准 / do not approve",
                "value": {"approved": False, "reviewed_by": "评审专家组", "note": "择优未入选"},
            },
        },
        "评审结论 / the decision",
    ),
    responses={**RESPONSES, **JSON_BODY},
)
async def review_application(
    application_id: ApplicationId, request: Request, rt: RuntimeDep, reviewer: Reviewer
) -> JSONResponse:
    body = validate_body(ReviewDecision, await read_json(request, rt.settings.max_body_bytes))

    def work() -> dict[str, Any]:
        repo.review(
            rt.db, application_id, body.approved, body.reviewed_by or reviewer.name, body.note
        )
        return _record(rt, application_id, reviewer)

    return JSONResponse(await run_in_threadpool(work))

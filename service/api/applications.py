"""/v1/applications: store and evaluate an application (idempotently), enter a paper application
(代录, reviewers), list and read them back with their evaluations, re-evaluate one under the rules
in force, and append the reviewer's decision to its approval history.

Who did something is the authenticated key (its id and name), never a field of the body; the
time is the server's clock (service.clock), never the body's own ``submitted_at``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, WithJsonSchema

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import FILLERS, FORMS, PLACEHOLDER, json_body, program_examples
from service.api.strict import JSON_BODY, read_json
from service.auditlog import Actor
from service.auth.guard import require
from service.auth.roles import Principal, Role
from service.clock import ClockDep
from service.db import applications as repo
from service.db.models import MAX_ID
from service.errors import InvalidRequest, NotBound, NotFound
from service.observability import count_evaluation
from service.rules.loader import RuleBook
from service.schemas.body import error_detail, path_of, validate_body
from service.schemas.forms import Application as Form
from service.schemas.performance import TrancheStatus
from service.schemas.results import CalculateResult
from service.schemas.types import USCC, PlainParagraph
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


class PaperEntry(ApplicationSubmission):
    """代录：评审人员录入此前收到的纸质申报 / a paper application received earlier, entered by a
    reviewer; it is judged on the date it was received, recorded with the reviewer's key."""

    received_at: datetime = Field(
        description=(
            "纸质申报的收件时间（含时区，不晚于现在） / when the paper application was received "
            "(with its offset; not in the future)"
        ),
        examples=["2023-03-01T10:00:00+08:00"],
    )


class ReviewDecision(BaseModel):
    """评审结论 / the reviewer's decision (择优遴选 is the reviewers', not the service's).
    Who decides is the key that sends it: a ``reviewed_by`` field is refused (422)."""

    model_config = ConfigDict(extra="forbid")

    approved: StrictBool = Field(
        description="true 批准；false 撤回或不予批准 / approve or withdraw"
    )
    note: PlainParagraph | None = Field(default=None, max_length=2000)


class ReviewOut(BaseModel):
    approved: bool
    reviewed_by: str | None = Field(description="评审密钥的名称 / the reviewing key's name")
    reviewed_at: str
    note: str | None


class KeyRef(BaseModel):
    key_id: int | None
    name: str


class ApprovalOut(BaseModel):
    id: int
    approved: bool
    note: str | None
    by: KeyRef
    received_at: str


class ClaimantOut(BaseModel):
    application_id: int
    applicant_uscc: str
    received_at: str
    same_applicant: bool


class ClaimOut(BaseModel):
    ref: str
    item_key: str
    counted: bool
    also_claimed_by: list[ClaimantOut]
    warning: dict[str, str] | None = Field(
        description="他单位申领同一项（第二十六条） / another organisation claims it (第二十六条)"
    )


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
    submitted_at: str = Field(description="申报方所填时间，按其时区 / as sent, in its offset")
    received_at: str = Field(
        description="服务收到的时间（服务器时钟；代录为纸质收件时间） / when the service received "
        "it (the server's clock; for a paper entry, when the paper was received)"
    )
    channel: str = Field(description="portal | paper（代录）")
    entered_at: str | None = Field(description="代录录入时间 / when a paper entry was entered")
    idempotency_key: str | None
    application: dict[str, Any] = Field(
        description="申报时提交的内容 / the application as submitted"
    )
    review: ReviewOut | None = Field(description="最近一次评审结论 / the latest decision")
    approvals: list[ApprovalOut] = Field(
        description="评审结论历史，只追加 / every decision, appended, never overwritten"
    )
    claims: list[ClaimOut] | None = Field(
        default=None,
        description="仅评审可见：各申领项及其他申领者 / reviewers only: who else claims each item",
    )
    evaluation: EvaluationOut = Field(description="最近一次评估 / the latest evaluation")
    evaluations: list[EvaluationSummary] = Field(
        description="历次评估，旧结论从不覆盖 / every evaluation; none is ever overwritten"
    )
    tranches: list[TrancheStatus] = Field(
        default_factory=list, description="各期拨款状态 / where each tranche stands"
    )


class ApplicationSummary(BaseModel):
    id: int
    program_id: str
    round_id: int | None
    applicant_uscc: str
    applicant_name: str | None
    submitted_at: str
    received_at: str
    status: str = Field(description="submitted | ineligible | approved | rejected")
    eligible: bool
    award_amount: str | None


class ApplicationPage(BaseModel):
    items: list[ApplicationSummary]
    next_cursor: str | None = Field(description="下一页的 cursor；null 为最后一页 / next page")


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


def _paper_examples(book: RuleBook) -> dict[str, Any]:
    return {
        pid: {**example, "value": {**example["value"], "received_at": "2023-03-01T10:00:00+08:00"}}
        for pid, example in _submission_examples(book).items()
    }


FILLERS["paper"] = _paper_examples


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


def _actor(principal: Principal) -> Actor:
    return Actor(principal.key_id, principal.name)


def _time_problem(path: str, msg: str) -> InvalidRequest:
    return InvalidRequest(
        [{"loc": ["body", *path.split(".")], "path": path, "type": "value_error", "msg": msg}]
    )


def _check_submitted_at(rt: Runtime, application: Form, now: datetime) -> None:
    """A portal's ``submitted_at`` must agree with the server's clock (a backdated or
    postdated date would move the application into or out of 第二十七条's window)."""
    minutes = rt.settings.submitted_at_tolerance_minutes
    if abs(application.submitted_at - now) > timedelta(minutes=minutes):
        raise _time_problem(
            "application.submitted_at",
            f"submitted_at 与服务器收到申报的时间相差超过{minutes}分钟；申报时间以服务器收到的时间"
            f"为准（纸质申报由评审代录） / submitted_at differs from the time the service "
            f"received the application by more than {minutes} minutes; the time that counts is "
            f"when the service receives it (paper applications are entered by a reviewer)",
        )


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
        reviewer = reader.role is Role.reviewer
        program = rt.book.get(stored.program_id)
        return {
            **repo.record(session, stored, reviewer, program),
            "tranches": tranches(session, stored),
        }


@router.post(
    "",
    status_code=201,
    response_model=StoredApplication,
    summary="提交并评估申报 / Store and evaluate an application",
    description=(
        "存储申报并按现行规则评估；带 Idempotency-Key 的重试返回第一次的结果。submitted_at 须与"
        "服务器时钟相差不超过5分钟（试用示例时改为当前时间），时间窗口按服务收到的时间判断；已结项"
        "轮次为409。 / Stores the "
        "application and evaluates it under the rules in force; a retry with the same "
        "Idempotency-Key returns the first result (header Idempotent-Replayed: true). "
        "submitted_at must be within 5 minutes of the server's clock (set it to now when "
        "trying the example); the window conditions are judged on when the service received "
        "it. A round that is closed is a 409."
    ),
    openapi_extra=json_body(
        ApplicationSubmission,
        {PLACEHOLDER: "submissions"},
        "项目、申报材料与轮次 / program, application, round",
    ),
    responses={**RESPONSES, **JSON_BODY, 409: {"description": "幂等键已用于不同内容 / key reused"}},
)
async def submit_application(
    request: Request,
    rt: RuntimeDep,
    portal: Portal,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock()
    body = validate_body(
        ApplicationSubmission, await read_json(request, rt.settings.max_body_bytes)
    )
    program = rt.program(body.program_id)
    application = _validate_application(program.form, body.application)
    if not portal.acts_for(application.applicant.uscc):
        raise NotBound(application.applicant.uscc)
    _check_submitted_at(rt, application, now)
    submission = repo.Submission(
        program=program,
        application=application,
        request=repo.jsonable(body.application),
        round_id=body.round_id,
        idempotency_key=idempotency_key,
        actor=_actor(portal),
        received_at=now,
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


@router.post(
    "/paper",
    status_code=201,
    response_model=StoredApplication,
    summary="代录纸质申报 / Enter a paper application (reviewers)",
    description=(
        "评审人员录入此前收到的纸质申报：按收件时间评估（第二十七条），收件时间与录入人（评审密钥）"
        "均记录在案。 / A reviewer enters a paper application received earlier: it is judged on "
        "the date it was received (第二十七条), and that date is recorded with the reviewer's key."
    ),
    openapi_extra=json_body(
        PaperEntry,
        {PLACEHOLDER: "paper"},
        "项目、申报材料、轮次与收件时间 / program, application, round, received date",
    ),
    responses={**RESPONSES, **JSON_BODY, 409: {"description": "幂等键已用于不同内容 / key reused"}},
)
async def enter_paper_application(
    request: Request,
    rt: RuntimeDep,
    reviewer: Annotated[Principal, Depends(require(Role.reviewer))],
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock()
    body = validate_body(PaperEntry, await read_json(request, rt.settings.max_body_bytes))
    program = rt.program(body.program_id)
    application = _validate_application(program.form, body.application)
    if body.received_at.tzinfo is None:
        raise _time_problem(
            "received_at", "收件时间须带时区 / received_at needs its offset (+08:00)"
        )
    if body.received_at > now:
        raise _time_problem(
            "received_at", "收件时间不能晚于现在 / received_at cannot be in the future"
        )
    submission = repo.Submission(
        program=program,
        application=application,
        request=repo.jsonable(body.application),
        round_id=body.round_id,
        idempotency_key=idempotency_key,
        actor=_actor(reviewer),
        received_at=body.received_at,
        channel="paper",
        entered_at=now,
    )

    def work() -> tuple[dict[str, Any], bool]:
        stored, replayed = repo.submit(rt.db, _rules(rt), submission)
        assert stored.id is not None
        return _record(rt, stored.id, reviewer), replayed

    record, replayed = await run_in_threadpool(work)
    return JSONResponse(
        record, status_code=201, headers={"Idempotent-Replayed": json.dumps(replayed)}
    )


@router.get(
    "",
    response_model=ApplicationPage,
    summary="申报列表 / The caller's applications",
    description=(
        "门户：其绑定单位的申报；评审：全部。按编号排序、分页（cursor 取上页的 next_cursor）。 / "
        "Portals: their applicants' applications; reviewers: all. In id order, paged (pass the "
        "previous page's next_cursor as cursor)."
    ),
)
def list_applications(
    rt: RuntimeDep,
    reader: Reader,
    program_id: Annotated[str | None, Query(max_length=100)] = None,
    round_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[
        str | None,
        Query(pattern="^(submitted|ineligible|approved|rejected)$"),
    ] = None,
    applicant_uscc: Annotated[USCC | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,10}$")] = None,
) -> JSONResponse:
    applicants = None
    if reader.role is not Role.reviewer:
        applicants = reader.applicants
        if "*" in applicants:
            applicants = None
    after = int(cursor) if cursor else 0
    items: list[dict[str, Any]] = []
    last = after
    with rt.db.transaction(write=False) as session:
        while len(items) < limit:
            batch = repo.listing(
                session, applicants, program_id, round_id, applicant_uscc, last, limit
            )
            if not batch:
                last = -1
                break
            for row in batch:
                last = row["id"]
                if status is None or row["status"] == status:
                    items.append(row)
                    if len(items) == limit:
                        break
    more = last != -1 and len(items) == limit
    return JSONResponse({"items": items, "next_cursor": str(last) if more else None})


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
    application_id: ApplicationId, request: Request, rt: RuntimeDep, reader: Reader, clock: ClockDep
) -> JSONResponse:
    _record(rt, application_id, reader)  # 404 unless the caller may see it
    repo.reevaluate(rt.db, _rules(rt), rt.program, application_id, _actor(reader), clock())
    record = _record(rt, application_id, reader)
    count_evaluation(request.app, record["program_id"], record["evaluation"]["eligible"])
    return JSONResponse(record, status_code=201)


@router.post(
    "/{application_id}/approval",
    response_model=StoredApplication,
    summary="追加评审结论 / Append the reviewer's decision",
    description=(
        "在评审历史中追加一条（批准或撤回，附说明），以最近一条为准；评审人取自密钥。 / Appends "
        "a decision (approve or withdraw, with a note) to the application's approval history; "
        "the latest stands. The reviewer is the key that sends it."
    ),
    openapi_extra=json_body(
        ReviewDecision,
        {
            "approve": {
                "summary": "批准 / approve",
                "value": {"approved": True, "note": "专家评审通过"},
            },
            "withdraw": {
                "summary": "撤回或不予批准 / withdraw or do not approve",
                "value": {"approved": False, "note": "择优未入选"},
            },
        },
        "评审结论 / the decision",
    ),
    responses={**RESPONSES, **JSON_BODY},
)
async def review_application(
    application_id: ApplicationId,
    request: Request,
    rt: RuntimeDep,
    reviewer: Reviewer,
    clock: ClockDep,
) -> JSONResponse:
    body = validate_body(ReviewDecision, await read_json(request, rt.settings.max_body_bytes))

    def work() -> dict[str, Any]:
        repo.review(rt.db, application_id, body.approved, body.note, _actor(reviewer), clock())
        return _record(rt, application_id, reviewer)

    return JSONResponse(await run_in_threadpool(work))

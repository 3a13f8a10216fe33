"""/v1/performance: judge an indicator table (绩效目标) and grade a score sheet (绩效评价).
Open like check. Routes translate HTTP <-> service.performance only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import FILLERS, PLACEHOLDER, json_body, program_examples
from service.api.strict import JSON_BODY, read_json
from service.auth.guard import open_access
from service.decision import decide
from service.engine.base import EngineError
from service.engine.facts import Context
from service.errors import EvaluationFailed, InvalidRequest
from service.money import fmt
from service.performance.acceptance import AcceptanceError, Report, evaluate
from service.performance.consistency import EarlierReport, disagreements
from service.performance.indicators import Indicator, TableError, judge_table
from service.performance.score import Row, SheetError, score_sheet
from service.performance.standards import score_standard
from service.rules.loader import RuleBook
from service.rules.program import Program
from service.schemas.body import error_detail, validate_body
from service.schemas.forms import Application as Form
from service.schemas.performance import (
    AcceptanceRequest,
    AcceptanceResult,
    ReportedGrowth,
    ReportRequest,
    ScoreRequest,
    ScoreResult,
    TargetsRequest,
    TargetsResult,
)

router = APIRouter(tags=["performance"], dependencies=[Depends(open_access)])
BAD_INPUT: dict[int | str, dict[str, Any]] = {422: {"description": "请求有误 / bad field"}}


def field_problem(path: str, message_zh: str, message_en: str) -> dict[str, Any]:
    loc: list[str | int] = ["body"]
    for part in path.replace("[", ".[").split("."):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return {
        "loc": loc,
        "path": path,
        "type": "value_error",
        "msg": f"{message_zh} / {message_en}",
    }


def indicator(item: Any) -> Indicator:
    return Indicator(
        item.name, item.target, item.actual, item.judgment, item.previous, item.growth,
        item.reference,
    )  # fmt: skip


TARGETS_EXAMPLES = {
    "budget-2024": {
        "summary": "2024年上海市知识产权专项资金绩效目标（节选） / the 2024 budget line's targets",
        "value": {
            "indicators": [
                {
                    "name": "每万人口高价值发明专利拥有量",
                    "target": "≥48.00(件)",
                    "actual": "50.2件",
                },
                {"name": "专利商标质押融资登记额", "target": "≥100.00(亿元)", "actual": "120亿元"},
                {"name": "专利许可转让数量", "target": "≥3.00(万次)", "actual": "28000次"},
                {"name": "立项项目支持资金到位率", "target": "≤100.00(%)", "actual": "100%"},
                {
                    "name": "立项项目验收及时性",
                    "target": "及时",
                    "actual": "及时",
                    "judgment": True,
                },
                {
                    "name": "提升知识产权高质量创造水平",
                    "target": "≥3.00(%)",
                    "actual": "1030件",
                    "previous": "1000件",
                    "growth": True,
                },
                {"name": "提升企业知识产权管理水平", "target": "提升"},
            ]
        },
    }
}


@router.post(
    "/v1/performance/targets",
    response_model=TargetsResult,
    summary="绩效目标表：逐项判断是否达到 / An indicator table: each target met or not",
    description=(
        "目标值与实际值按财政绩效目标表的写法（≥48.00(件)、≤100.00(%)、1000 次、100 亿元、≥4:1、"
        "≥ 市级支持额度、提升）。单位不可比较（家与亿元）为 422。定性目标须由评审判断（judgment）。"
        " / Targets and actuals as the bureau writes them; units that cannot be compared are a "
        "422 naming indicators[i].target or .actual; qualitative targets need a judgment."
    ),
    openapi_extra=json_body(TargetsRequest, TARGETS_EXAMPLES, "绩效指标 / the indicators"),
    responses={**BAD_INPUT, **JSON_BODY},
)
async def targets(request: Request, rt: RuntimeDep) -> JSONResponse:
    body = validate_body(TargetsRequest, await read_json(request, rt.settings.max_body_bytes))
    try:
        verdict = judge_table([indicator(i) for i in body.indicators])
    except TableError as exc:
        raise InvalidRequest(
            [
                field_problem(f"indicators[{e.index}].{e.field}", e.message_zh, e.message_en)
                for e in exc.errors
            ]
        ) from exc
    return JSONResponse(verdict.public())


SCORE_EXAMPLES = {
    "stcsm-2021-2023": {
        "summary": "《行动方案》绩效评价（表3-1，节选：满意度） / the evaluation's 满意度 rows",
        "value": {
            "rows": [
                {
                    "level1": "满意度",
                    "level2": "服务对象满意度",
                    "name": "受益机构满意度",
                    "weight": "4",
                    "score": "4",
                },
                {
                    "level1": "满意度",
                    "level2": "服务对象满意度",
                    "name": "受益机构服务对象满意度",
                    "weight": "3",
                    "score_rate": "94.40%",
                },
            ]
        },
    }
}


def _plain(value: Any) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@router.post(
    "/v1/performance/score",
    response_model=ScoreResult,
    summary="绩效评价评分表：小计、总分与等级 / A score sheet: subtotals, total and grade",
    description=(
        "每行一个三级指标（权重与得分或得分率）。得分不得高于权重；权重合计应为100（否则警告）。"
        "90分（含）以上为优，75分（含）以上为良，60分（含）以上为合格，以下为不合格。 / One row per "
        "indicator (weight and score or score rate). A score above its weight is a 422; weights "
        "should add up to 100 (else a warning). 优 from 90, 良 from 75, 合格 from 60, else 不合格."
    ),
    openapi_extra=json_body(ScoreRequest, SCORE_EXAMPLES, "评分表 / the score sheet"),
    responses={**BAD_INPUT, **JSON_BODY},
)
async def score(request: Request, rt: RuntimeDep) -> JSONResponse:
    body = validate_body(ScoreRequest, await read_json(request, rt.settings.max_body_bytes))
    rows = [Row(r.level1, r.level2, r.name, r.weight, r.score, r.score_rate) for r in body.rows]
    try:
        sheet = score_sheet(rows, score_standard(rt.book.root))
    except SheetError as exc:
        raise InvalidRequest(
            [
                field_problem(f"rows[{e.index}].{e.field}", e.message_zh, e.message_en)
                for e in exc.errors
            ]
        ) from exc
    out = {
        **sheet,
        "weight": _plain(sheet["weight"]),
        "total": _plain(sheet["total"]),
        "rate": str(sheet["rate"]),
        "subtotals": [
            {
                **s,
                "weight": _plain(s["weight"]),
                "score": _plain(s["score"]),
                "rate": str(s["rate"]),
            }
            for s in sheet["subtotals"]
        ],
        "rows": [
            {
                **r,
                "weight": _plain(r["weight"]),
                "score": _plain(r["score"]),
                "rate": str(r["rate"]),
            }
            for r in sheet["rows"]
        ],
    }
    return JSONResponse(out)


ProgramId = Annotated[
    str,
    Path(
        description="项目编号 / program id",
        examples=["stcsm2023-concept-verification"],
        max_length=100,
    ),
]


def _acceptance_examples(book: RuleBook) -> dict[str, Any]:
    application = program_examples(book)["stcsm2023-concept-verification"]["value"]
    return {
        "stcsm2023-concept-verification": {
            "summary": "概念验证中心三年期项目验收（任务书目标偏低，逾期提交） / a 3-year centre's "
            "acceptance (a task-book target too low, materials late)",
            "value": {
                "application": application,
                "stage": "acceptance",
                "reported": {
                    "innovation-value-added": "5.2亿元",
                    "results-listed": "56项",
                    "results-transferred": "12项",
                    "new-tech-managers": "6人",
                },
                "task_book": {"results-listed": "≥40项"},
                "period_ends_on": "2026-12-31",
                "reported_on": "2027-04-15",
            },
        }
    }


FILLERS["acceptance"] = _acceptance_examples


@router.post(
    "/v1/programs/{program_id}/acceptance",
    tags=["programs"],
    response_model=AcceptanceResult,
    summary="项目验收：对照绩效目标与任务书，及可拨付款项 / Acceptance: targets, task book, tranche",
    description=(
        "项目报告的实际值对照申报指南（表1-9）的每项目标和项目任务书；任务书目标低于指南为警告"
        "（目标设置过低）；执行期结束3个月后提交验收材料为警告（C32）。验收合格后拨付尾款。 / "
        "The project's figures against the guide's targets (表1-9) and its task book; a task-book "
        "target below the guide's and materials later than 3 months after the period (C32) are "
        "warnings. The acceptance tranche is payable once acceptance passes."
    ),
    openapi_extra=json_body(
        AcceptanceRequest,
        {PLACEHOLDER: "acceptance"},
        "申报材料与报告 / the application and report",
    ),
    responses={404: {"description": "未知项目 / unknown program"}, **BAD_INPUT, **JSON_BODY},
)
async def acceptance(program_id: ProgramId, request: Request, rt: RuntimeDep) -> JSONResponse:
    program = rt.program(program_id)
    body = validate_body(AcceptanceRequest, await read_json(request, rt.settings.max_body_bytes))
    try:
        application = program.form.model_validate(body.application)
    except ValidationError as exc:
        detail = error_detail(exc, ("body", "application"))
        for item in detail:
            item["path"] = f"application.{item['path']}" if item["path"] else "application"
        raise InvalidRequest(detail) from exc
    return JSONResponse(judge_report(rt, program, application, body))


def reported_json(body: ReportRequest) -> dict[str, Any]:
    """The reported figures as stored: texts, and growth figures as {actual, previous}."""
    return {
        key: v.model_dump() if isinstance(v, ReportedGrowth) else v
        for key, v in body.reported.items()
    }


def judge_report(
    rt: Runtime,
    program: Program,
    application: Form,
    body: ReportRequest,
    earlier: list[EarlierReport] | None = None,
    disqualified: bool | None = None,
) -> dict[str, Any]:
    """The acceptance result of one report (also what a stored report keeps)."""
    if disqualified is None:
        disqualified = application.applicant.uscc in rt.disqualified
    context = Context(disqualified=disqualified)
    try:
        decision = decide(program, application, rt.evaluator, rt.book.version, context)
    except EngineError as exc:
        raise EvaluationFailed() from exc
    report = Report(
        body.stage,
        {
            key: (v.actual, v.previous) if isinstance(v, ReportedGrowth) else v
            for key, v in body.reported.items()
        },
        dict(body.task_book),
        body.reported_on,
        body.period_ends_on,
    )
    try:
        outcome = evaluate(
            program,
            getattr(application.applicant, "entity_type", None),
            decision.eligible,
            decision.disbursement,
            decision.award.amount,
            report,
        )
    except AcceptanceError as exc:
        raise InvalidRequest(
            [field_problem(e.path, e.message_zh, e.message_en) for e in exc.errors]
        ) from exc
    if earlier:
        articles = {t.id: t.article for t in program.targets}
        outcome.warnings += disagreements(earlier, body.stage, reported_json(body), articles)
    table = outcome.table.public()
    tranche = outcome.tranche
    return {
        "program_id": program.id,
        "rules_version": rt.book.version,
        "stage": outcome.stage,
        "passed": outcome.passed,
        "indicators": table["indicators"],
        "counts": table["counts"],
        "warnings": outcome.warnings,
        "tranche": None if tranche is None else {**tranche, "amount": fmt(tranche["amount"])},
    }

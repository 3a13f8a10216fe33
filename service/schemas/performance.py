"""The contract of the performance routes: indicator tables (绩效目标), score sheets (绩效评价)
and a project's acceptance (验收). Targets and actuals are texts as the bureau writes them; a
JSON number is taken as its text, exactly (bodies are decoded with Decimal, never float)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, WithJsonSchema

from service.schemas.types import CalendarDate


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("应为文字或数值，而非布尔值 / a text or number is expected, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else "NaN"
    return value


Notation = Annotated[
    str,
    BeforeValidator(_text),
    Field(min_length=1, max_length=100),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "按财政绩效目标表的写法 / as the bureau writes it: ≥48.00(件), "
            "≤100.00(%), 1000 次, 100 亿元, ≥4:1, ≥ 市级支持额度, 提升",
            "examples": ["≥20%"],
        }
    ),
]

_POINTS_RE = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,4})?$")
_RATE_RE = re.compile(r"^([0-9]{1,3}(\.[0-9]{1,4})?)%$")


def _points(value: Any) -> Decimal:
    text = _text(value)
    if not isinstance(text, str) or not _POINTS_RE.fullmatch(text):
        raise ValueError(
            '分值应为非负数，最多四位小数，如 "2.57" / points are a non-negative number, like "2.57"'
        )
    return Decimal(text)


def _rate(value: Any) -> Decimal:
    text = _text(value)
    if isinstance(text, str):
        percent = _RATE_RE.fullmatch(text)
        if percent:
            return Decimal(percent.group(1)) / 100
        if _POINTS_RE.fullmatch(text) and Decimal(text) <= 1:
            return Decimal(text)
    raise ValueError(
        '得分率写作百分比（"94.40%"）或 0 至 1 的小数 / a score rate is a percentage ("94.40%") '
        "or a fraction from 0 to 1"
    )


Points = Annotated[
    Decimal,
    BeforeValidator(_points),
    WithJsonSchema({"type": "string", "pattern": _POINTS_RE.pattern, "examples": ["2.57"]}),
]
ScoreRate = Annotated[
    Decimal,
    BeforeValidator(_rate),
    WithJsonSchema(
        {
            "type": "string",
            "description": '百分比或 0–1 的小数 / a percentage or a fraction: "94.40%", "0.944"',
            "examples": ["94.40%"],
        }
    ),
]
Label = Annotated[str, Field(min_length=1, max_length=200)]


class IndicatorIn(BaseModel):
    """一项绩效指标 / one indicator of a 绩效目标 table."""

    model_config = ConfigDict(extra="forbid")

    name: Label = Field(examples=["每万人口高价值发明专利拥有量"])
    target: Notation
    actual: Notation | None = Field(default=None, description="实际完成值 / the actual")
    judgment: StrictBool | None = Field(
        default=None, description="评审对定性目标的判断 / a reviewer's verdict (qualitative)"
    )
    previous: Notation | None = Field(
        default=None, description="上年值（与 growth 一起计算增长率） / last year's value"
    )
    growth: StrictBool = Field(
        default=False, description="由 actual 与 previous 计算增长率 / compute a growth rate"
    )
    reference: Notation | None = Field(
        default=None,
        description="相对目标所指数值（如市级支持额度） / the value a relative target names",
    )


class TargetsRequest(BaseModel):
    """绩效目标表 / an indicator table."""

    model_config = ConfigDict(extra="forbid")

    indicators: list[IndicatorIn] = Field(min_length=1, max_length=500)


class QuantityOut(BaseModel):
    value: str = Field(examples=["100"])
    unit: str = Field(examples=["亿元"])
    base_value: str | None = Field(default=None, examples=["10000000000"])
    base_unit: str | None = Field(default=None, examples=["元"])


class TargetOut(BaseModel):
    kind: Literal["quantitative", "relative", "qualitative"]
    text: str = Field(examples=["≥20%"])
    op: Literal[">=", "<=", "=", ">", "<"] | None
    value: str | None = None
    unit: str | None = None
    base_value: str | None = None
    base_unit: str | None = None
    implied_op: bool | None = Field(
        default=None, description="未写运算符：视为不低于 / no operator written: at least"
    )
    reference: str | None = Field(default=None, examples=["市级支持额度"])
    word: str | None = Field(default=None, examples=["提升"])


class ActualOut(BaseModel):
    text: str
    value: str | None = None
    unit: str | None = None
    base_value: str | None = None
    base_unit: str | None = None
    bound: Literal[">=", "<="] | None = None


class IndicatorOut(BaseModel):
    id: str | None = Field(default=None, description="目标编号（验收） / the target's id")
    article: str | None = None
    source: Literal["reported", "task_book"] | None = Field(
        default=None,
        description="验收：对照申报指南目标或任务书目标 / acceptance: the guide's or the task book's",
    )
    name: str
    target: TargetOut
    actual: ActualOut | None
    met: bool | None = Field(description="null：尚待评审判断 / unjudged")
    status: Literal["met", "not_met", "unjudged"]
    message_zh: str
    message_en: str
    growth_rate: QuantityOut | None = None
    reference: QuantityOut | None = None


class Counts(BaseModel):
    met: int
    not_met: int
    unjudged: int


class TargetsResult(BaseModel):
    met: bool | None = Field(
        description="全部达到为 true；有未达到为 false；否则有待判断为 null / all met, one "
        "not met, or unjudged"
    )
    counts: Counts
    indicators: list[IndicatorOut]


class ScoreRowIn(BaseModel):
    """评分表一行：三级指标 / one third-level indicator of a score sheet."""

    model_config = ConfigDict(extra="forbid")

    level1: Label = Field(examples=["决策"])
    level2: Label = Field(examples=["设立依据"])
    name: Label = Field(examples=["设立依据充分性"])
    weight: Points
    score: Points | None = None
    score_rate: ScoreRate | None = None


class ScoreRequest(BaseModel):
    """绩效评价评分表 / a 绩效评价 score sheet."""

    model_config = ConfigDict(extra="forbid")

    rows: list[ScoreRowIn] = Field(min_length=1, max_length=1000)


class Subtotal(BaseModel):
    level1: str
    weight: str
    score: str
    rate: str = Field(description="得分率（%） / score rate in percent", examples=["78.50"])


class ScoredRow(BaseModel):
    index: int
    name: str
    weight: str
    score: str
    rate: str


class PerformanceWarning(BaseModel):
    rule: str = Field(examples=["task-book-target-too-low"])
    article: str
    message_zh: str
    message_en: str
    target_id: str | None = Field(default=None, description="所涉目标 / the target concerned")
    due: str | None = Field(default=None, description="验收材料截止日 / when materials were due")
    earlier_report_id: int | None = Field(
        default=None, description="与之不一致的报告 / the report it disagrees with"
    )
    earlier_value: str | None = None
    value: str | None = None


class ReportedGrowth(BaseModel):
    """增长率指标：本年值与上年值 / a growth indicator as this and last year's values."""

    model_config = ConfigDict(extra="forbid")

    actual: Notation
    previous: Notation


class ScoreResult(BaseModel):
    weight: str = Field(examples=["100"])
    total: str = Field(examples=["84.31"])
    rate: str = Field(examples=["84.31"])
    grade: Literal["优", "良", "合格", "不合格"]
    grade_article: str
    subtotals: list[Subtotal]
    rows: list[ScoredRow]
    warnings: list[PerformanceWarning]


class ReportRequest(BaseModel):
    """阶段报告（中期或验收） / a stage report (mid-term or acceptance)."""

    model_config = ConfigDict(extra="forbid")

    stage: Literal["mid_term", "acceptance"]
    reported: dict[Annotated[str, Field(max_length=100)], Notation | ReportedGrowth] = Field(
        default_factory=dict,
        max_length=100,
        description="目标编号 → 实际值（增长率指标可给本年值与上年值） / target id → actual",
    )
    task_book: dict[Annotated[str, Field(max_length=100)], Notation] = Field(
        default_factory=dict,
        max_length=100,
        description="任务书目标值 / the task book's targets, by target id",
    )
    reported_on: CalendarDate | None = Field(
        default=None, description="验收材料提交日期 / the day the materials came in"
    )
    period_ends_on: CalendarDate | None = Field(
        default=None, description="项目执行期结束日 / the last day of the project period"
    )


class AcceptanceRequest(ReportRequest):
    """项目验收（或中期检查） / a project's acceptance (or mid-term check)."""

    application: dict[str, Any] = Field(description="立项时的申报材料 / the application")


class TrancheOut(BaseModel):
    stage: Literal["first_year", "mid_term", "acceptance"]
    share: str
    amount: str
    payable: bool


class AcceptanceResult(BaseModel):
    program_id: str
    rules_version: str
    stage: Literal["mid_term", "acceptance"]
    passed: bool | None = Field(description="null：尚待评审判断 / unjudged")
    indicators: list[IndicatorOut]
    counts: Counts
    warnings: list[PerformanceWarning]
    tranche: TrancheOut | None = Field(
        description="本阶段拨付款项 / the tranche this stage releases (null: none at this stage)"
    )


class StoredReport(BaseModel):
    id: int
    application_id: int
    stage: Literal["mid_term", "acceptance"]
    reported: dict[str, Any]
    task_book: dict[str, Any]
    reported_on: str | None
    period_ends_on: str | None
    rules_version: str
    received_at: str
    passed: bool | None
    indicators: list[IndicatorOut]
    counts: Counts
    warnings: list[PerformanceWarning]
    tranche: TrancheOut | None


class TrancheStatus(BaseModel):
    stage: Literal["first_year", "mid_term", "acceptance"]
    share: str
    amount: str
    status: Literal["paid", "payable", "withheld", "pending"]
    reason: str = Field(
        description="approved | not_approved | not_reviewed | not_eligible | mid_term_report | "
        "no_report | unjudged | accepted | acceptance_failed"
    )


class ReportsOut(BaseModel):
    application_id: int
    reports: list[StoredReport] = Field(description="按提交顺序，只增不改 / oldest first")
    tranches: list[TrancheStatus]

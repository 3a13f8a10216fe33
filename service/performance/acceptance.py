"""A project's acceptance (验收) or mid-term check: its reported figures against its program's
per-project targets (表1-9) and against its own task book, the C32 timing rule, and the tranche
this stage releases (政策兑现方式).

Pure: the compiled program, the applicant's entity type, the tranches ``awards.disburse``
already computed, and what the project reported. Decisions:
- every applicable guide target is judged; a task-book target is judged too (the project
  answers to its task book), and one below the guide's is a warning (目标设置过低, the
  evaluation's 五、存在的问题: targets set too low in task books);
- acceptance passes when every target is met (a missing figure leaves it unjudged: null);
- materials later than ``acceptance.within_months`` after the period ends are a warning (C32);
- the acceptance tranche is payable only when acceptance passes ("验收合格后"); the mid-term
  tranche is paid at 中期 without a target test (the source conditions only the last), so the
  mid-term check reports progress and the tranche is payable once the report is in.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from service.awards import Tranche
from service.performance.indicators import Indicator, TableError, TableVerdict, judge_table
from service.performance.notation import (
    NotationError,
    Quantity,
    Target,
    comparable,
    parse_target,
)
from service.rules.program import Program, ProgramTarget

TOO_LOW = "task-book-target-too-low"
LATE = "late-report"


@dataclass(frozen=True)
class Report:
    stage: str  # mid_term | acceptance
    reported: dict[str, str | tuple[str, str]]  # target id -> actual, or (actual, previous)
    task_book: dict[str, str] = field(default_factory=dict)
    reported_on: date | None = None
    period_ends_on: date | None = None


@dataclass(frozen=True)
class ReportError:
    path: str  # reported.<id> | task_book.<id>
    message_zh: str
    message_en: str


class AcceptanceError(ValueError):
    def __init__(self, errors: list[ReportError]) -> None:
        super().__init__("; ".join(f"{e.path}: {e.message_en}" for e in errors))
        self.errors = errors


@dataclass
class Outcome:
    stage: str
    table: TableVerdict
    warnings: list[dict[str, str]]
    tranche: dict[str, Any] | None

    @property
    def passed(self) -> bool | None:
        return self.table.met


def applicable_targets(program: Program, entity_type: str | None) -> list[ProgramTarget]:
    return [t for t in program.targets if t.entity_types is None or entity_type in t.entity_types]


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day (31 Oct + 3 months: 31 Jan)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def evaluate(
    program: Program,
    entity_type: str | None,
    eligible: bool,
    tranches: list[Tranche] | None,
    award: Decimal | None,
    report: Report,
) -> Outcome:
    targets = applicable_targets(program, entity_type)
    by_id = {t.id: t for t in targets}
    errors = [
        ReportError(
            f"{where}.{key}",
            f"本项目没有编号为 {key} 的绩效目标（可用：{'、'.join(by_id) or '无'}）",
            f"This program has no target {key!r} for this applicant (known: "
            f"{', '.join(by_id) or 'none'})",
        )
        for where, keys in (("reported", report.reported), ("task_book", report.task_book))
        for key in keys
        if key not in by_id
    ]
    if errors:
        raise AcceptanceError(errors)
    indicators, sources = _indicators(targets, report)
    warnings, found = _too_low(by_id, report)
    try:
        table = judge_table(indicators)
    except TableError as exc:
        for e in exc.errors:
            where, key = sources[e.index]
            path = f"{'reported' if e.field in ('actual', 'previous') else where}.{key}"
            found.setdefault(path, ReportError(path, e.message_zh, e.message_en))
        raise AcceptanceError(sorted(found.values(), key=_reported_first)) from exc
    if found:
        raise AcceptanceError(list(found.values()))
    for verdict, (where, key) in zip(table.indicators, sources, strict=True):
        target = by_id[key]
        verdict.extra = {"id": key, "article": target.article, "source": where}
    warnings += _late(program, report)
    if not eligible:
        warnings.append(
            {
                "rule": "not-eligible",
                "article": program.article,
                "message_zh": "按现行规则该申报不符合条件，不拨付款项",
                "message_en": "Under the rules in force the application is not eligible: "
                "nothing is payable",
            }
        )
    outcome = Outcome(report.stage, table, warnings, None)
    outcome.tranche = _tranche(report.stage, tranches, award, eligible, outcome.passed)
    return outcome


def _indicators(
    targets: list[ProgramTarget], report: Report
) -> tuple[list[Indicator], list[tuple[str, str]]]:
    indicators: list[Indicator] = []
    sources: list[tuple[str, str]] = []
    for target in targets:
        figure = report.reported.get(target.id)
        actual, previous = figure if isinstance(figure, tuple) else (figure, None)
        growth = target.growth and previous is not None
        indicators.append(Indicator(target.zh, target.target, actual, None, previous, growth))
        sources.append(("reported", target.id))
        task = report.task_book.get(target.id)
        if task is not None:
            indicators.append(
                Indicator(f"{target.zh}（任务书）", task, actual, None, previous, growth)
            )
            sources.append(("task_book", target.id))
    return indicators, sources


def _reported_first(error: ReportError) -> bool:
    return not error.path.startswith("reported.")


def _too_low(
    by_id: dict[str, ProgramTarget], report: Report
) -> tuple[list[dict[str, str]], dict[str, ReportError]]:
    """Warnings for task-book targets laxer than the guide's, and the unreadable ones."""
    warnings: list[dict[str, str]] = []
    errors: dict[str, ReportError] = {}
    for key, text in report.task_book.items():
        path = f"task_book.{key}"
        guide = parse_target(by_id[key].target)
        try:
            task = parse_target(text)
            if task.quantity is None or guide.quantity is None:
                raise NotationError(
                    "任务书目标应为可计量的目标值", "A task-book target must be measurable"
                )
            g, t = comparable(guide.quantity, task.quantity, "任务书目标", "task-book target")
        except NotationError as exc:
            errors[path] = ReportError(path, exc.message_zh, exc.message_en)
            continue
        if _laxer(guide, g, task, t):
            warnings.append(
                {
                    "rule": TOO_LOW,
                    "article": by_id[key].article,
                    "target_id": key,
                    "message_zh": f"任务书目标 {text} 低于申报指南目标 {guide.text}（目标设置过低）",
                    "message_en": f"The task book's target {text} is below the guide's "
                    f"{guide.text} (target set too low)",
                }
            )
    return warnings, errors


def _laxer(guide: Target, g: Quantity, task: Target, t: Quantity) -> bool:
    """Whether the task book asks less than the guide (a lower floor, a higher ceiling)."""
    if guide.op in (">=", ">", "="):
        return t.base < g.base or (t.base == g.base and guide.op == ">" and task.op == ">=")
    return t.base > g.base or (t.base == g.base and guide.op == "<" and task.op == "<=")


def _late(program: Program, report: Report) -> list[dict[str, str]]:
    rule = program.acceptance
    if (
        rule is None
        or report.stage != "acceptance"
        or report.reported_on is None
        or report.period_ends_on is None
    ):
        return []
    due = add_months(report.period_ends_on, rule.within_months)
    if report.reported_on <= due:
        return []
    return [
        {
            "rule": LATE,
            "article": rule.article,
            "due": due.isoformat(),
            "message_zh": f"{rule.zh}；执行期 {report.period_ends_on} 结束，应于 {due} 前提交，"
            f"实际 {report.reported_on} 提交",
            "message_en": f"{rule.en}: the period ended {report.period_ends_on}, materials were "
            f"due by {due} and came in on {report.reported_on}",
        }
    ]


def _tranche(
    stage: str,
    tranches: list[Tranche] | None,
    award: Decimal | None,
    eligible: bool,
    passed: bool | None,
) -> dict[str, Any] | None:
    if tranches is None:
        # A program without a staged schedule pays once, after acceptance (spec: "absent or a
        # single acceptance tranche elsewhere").
        tranches = [Tranche("acceptance", Decimal("1.00"), award)] if award is not None else []
    chosen = next((t for t in tranches if t.stage == stage), None)
    if chosen is None:
        return None
    payable = eligible and (passed is True if stage == "acceptance" else True)
    return {
        "stage": chosen.stage,
        "share": str(chosen.share),
        "amount": chosen.amount,
        "payable": payable,
    }

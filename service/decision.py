"""From facts to a decision: the engine's violations, items counted once, the award.

Pure (no FastAPI, no database): the API, the stored-applications flow and the audit all call
``decide`` and get the same answer with the same trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from service.awards import Award, Tranche, compute_award, disburse, suggestions
from service.engine.base import Evaluator, Violations
from service.engine.facts import Context, extract
from service.money import ZERO
from service.rules.model import Statement
from service.rules.program import Condition, ItemGroup, Program


@dataclass(frozen=True)
class Reason:
    rule: str
    article: str
    passed: bool
    message_zh: str
    message_en: str


@dataclass
class ItemResult:
    ref: str
    counted: bool
    reasons: list[Reason]
    amount: Decimal


@dataclass
class Decision:
    program_id: str
    rules_version: str
    eligible: bool
    reasons: list[Reason]
    items: list[ItemResult] | None
    award: Award
    warnings: list[Reason] = field(default_factory=list)
    priority: list[Reason] = field(default_factory=list)
    disbursement: list[Tranche] | None = None
    suggestions: dict[str, Decimal] = field(default_factory=dict)
    program: Program | None = None  # what the verdict line reads (its award, items and title)


def _reason(
    s: Condition | Statement, passed: bool, zh_extra: str = "", en_extra: str = ""
) -> Reason:
    return Reason(s.id, s.article, passed, s.zh + zh_extra, s.en + en_extra)


def decide(
    program: Program,
    application: BaseModel,
    evaluator: Evaluator,
    rules_version: str,
    context: Context | None = None,
    overrides: dict[str, Any] | None = None,
) -> Decision:
    violations = evaluator.evaluate(program, extract(program, application, context or Context()))
    reasons: list[Reason] = []
    warnings: list[Reason] = []
    priority: list[Reason] = []
    for cond in program.conditions:
        passed = cond.id not in violations.app
        if cond.severity == "error":
            reasons.append(_reason(cond, passed))
        elif cond.severity == "warning" and not passed:
            warnings.append(_reason(cond, passed))
        elif cond.severity == "priority":
            priority.append(_reason(cond, passed))

    judged: dict[str, list[ItemResult]] = {}
    for group in program.item_groups:
        judged[group.list_name], group_reasons, group_warnings = _judge_items(
            application, group, violations
        )
        reasons.extend(group_reasons)
        warnings.extend(group_warnings)

    eligible = all(r.passed for r in reasons)
    counted = {name: [i for i, r in enumerate(rs) if r.counted] for name, rs in judged.items()}
    award = compute_award(program, application, counted, overrides) if eligible else Award.nothing()
    for name, amounts in award.item_amounts.items():
        for result, amount in zip(judged[name], amounts, strict=True):
            if result.counted:
                result.amount = amount
    if award.pending is not None:
        param = program.param(award.pending)
        warnings.append(
            Reason(
                award.pending,
                param.article,
                False,
                f"{param.zh}；本次未计算金额",
                f"{param.en}; no amount is computed here",
            )
        )
    tranches = disburse(program, application, award)
    failed = {r.rule for r in reasons if not r.passed}
    # Failed conditions first, each group in rule order.
    reasons.sort(key=lambda r: r.passed)
    return Decision(
        program.id,
        rules_version,
        eligible,
        reasons,
        judged[program.plan.items] if program.plan.items else None,
        award,
        warnings,
        priority,
        tranches,
        suggestions(program, application, failed),
        program=program,
    )


def _judge_items(
    application: BaseModel, group: ItemGroup, violations: Violations
) -> tuple[list[ItemResult], list[Reason], list[Reason]]:
    """Judge items one by one, by the group's rules (``ItemGroup``)."""
    raw_items = getattr(application, group.list_name, None) or []
    failed_sets = violations.items.get(group.list_name, ())
    results: list[ItemResult] = []
    first_of: dict[Any, str] = {}
    item_warnings: list[Reason] = []
    for index, failed in enumerate(failed_sets):
        ref = f"{group.list_name}[{index}]"
        item_reasons = [_reason(c, False) for c in group.excluding if c.id in failed]
        item_warnings.extend(
            _reason(c, False, f"（{ref}）", f" ({ref})") for c in group.warnings if c.id in failed
        )
        if not item_reasons and group.distinct_by is not None and group.duplicate is not None:
            key = getattr(raw_items[index], group.distinct_by)
            if key in first_of:
                item_reasons.append(
                    _reason(
                        group.duplicate,
                        False,
                        f"（与{first_of[key]}相同）",
                        f" (same as {first_of[key]})",
                    )
                )
            else:
                first_of[key] = ref
        results.append(ItemResult(ref, not item_reasons, item_reasons, ZERO))

    app_reasons: list[Reason] = []
    if group.rejects_application:
        for cond in group.excluding:
            bad = [r.ref for r in results if any(x.rule == cond.id for x in r.reasons)]
            suffix = "、".join(bad)
            app_reasons.append(
                _reason(
                    cond,
                    not bad,
                    f"（{suffix}）" if bad else "",
                    f" ({', '.join(bad)})" if bad else "",
                )
            )
    if group.at_least_one is not None:
        app_reasons.append(_reason(group.at_least_one, any(r.counted for r in results)))
    return results, app_reasons, item_warnings

"""The verdict line a result starts with (``summary_zh`` / ``summary_en``): eligible or not,
the award and how it was reached (3项专利许可转让 × 1,500.00元 = 4,500.00元), or the first
failed reasons with their articles.

It only reads the decision — the amounts the award arithmetic computed, the caps it met, the
items it counted — and the program's parameters and labels; it computes no amount itself.
"""

from __future__ import annotations

from decimal import Decimal

from service.decision import Decision
from service.rules.award_plan import Fixed, PerItem, RateOfItems, Tiers
from service.rules.forms import field_label
from service.rules.program import Program

FIRST_REASONS = 2  # a line, not the list: the reasons follow in full


def yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def verdict(decision: Decision, with_award: bool) -> tuple[str, str]:
    program = decision.program
    if not decision.eligible:
        failed = [r for r in decision.reasons if not r.passed]
        shown = failed[:FIRST_REASONS]
        zh = "不符合条件：" + "；".join(f"{r.message_zh}（{r.article}）" for r in shown)
        en = "Not eligible: " + "; ".join(f"{r.message_en} ({r.article})" for r in shown)
        if len(failed) > len(shown):
            zh += f"；等共{len(failed)}项未满足"
            en += f"; {len(failed) - len(shown)} more not met"
        return zh, en
    if program is None:  # pragma: no cover - every decision of decide() names its program
        return "符合条件", "Eligible"
    if not with_award:
        return (
            f"符合条件：{program.title_zh}（{program.article}）",
            f"Eligible: {program.title_en} ({program.article})",
        )
    award = decision.award
    if award.amount is None:
        article = program.param(award.pending).article if award.pending else program.article
        return (
            f"符合条件；奖补金额按轮次确定（{article}）",
            f"Eligible; the amount is set per funding round ({article})",
        )
    how_zh, how_en = _how(program, decision)
    for cap in award.caps_applied:
        if cap.binding and cap.rule in {c.name for c in program.plan.caps}:
            how_zh += f"，超过上限{yuan(cap.limit)}元（{cap.article}），按上限核定"
            how_en += f", capped at {yuan(cap.limit)} yuan ({cap.article})"
    return (
        f"符合条件，奖补{yuan(award.amount)}元：{how_zh}",
        f"Eligible for {yuan(award.amount)} yuan: {how_en}",
    )


def _how(program: Program, decision: Decision) -> tuple[str, str]:
    """How the amount was reached, read from the compiled award plan's base step."""
    uncapped = decision.award.uncapped_amount or decision.award.amount
    assert uncapped is not None
    counted = sum(1 for i in decision.items or [] if i.counted)
    match program.plan.base:
        case PerItem(items=items, amount=each):
            zh, en = _label(program, items)
            return (
                f"{counted}项{zh} × {yuan(each)}元 = {yuan(uncapped)}元",
                f"{counted} {en} × {yuan(each)} yuan = {yuan(uncapped)} yuan",
            )
        case RateOfItems(items=items, base=base, rate=rate):
            zh, en = _label(program, items)
            base_zh, base_en = _label(program, f"{items}.{base}")
            return (
                f"{counted}项{zh}，{base_zh}合计的{_percent(rate)} = {yuan(uncapped)}元",
                f"{counted} {en}, {_percent(rate)} of the {base_en} = {yuan(uncapped)} yuan",
            )
        case Fixed():
            return f"定额{yuan(uncapped)}元", f"a fixed {yuan(uncapped)} yuan"
        case Tiers():
            return f"按绩效等次{yuan(uncapped)}元", f"{yuan(uncapped)} yuan for its tier"
    return f"申请金额{yuan(uncapped)}元", f"the {yuan(uncapped)} yuan requested"


def _label(program: Program, path: str) -> tuple[str, str]:
    label = field_label(program.form, path)
    return (label.zh, label.en) if label else (path, path)


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"

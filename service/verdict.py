"""The verdict line a result starts with (``summary_zh`` / ``summary_en``): eligible or not,
the award and how it was reached (3项专利许可转让 × 1,500.00元 = 4,500.00元), or the first
failed reasons with their articles.

It only reads the decision — the amounts the award arithmetic computed, the caps it met, the
items it counted — and the program's parameters and labels; it computes no amount itself.
"""

from __future__ import annotations

from decimal import Decimal

from service.decision import Decision
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
        if cap.binding and cap.rule in program.award.caps:
            how_zh += f"，超过上限{yuan(cap.limit)}元（{cap.article}），按上限核定"
            how_en += f", capped at {yuan(cap.limit)} yuan ({cap.article})"
    return (
        f"符合条件，奖补{yuan(award.amount)}元：{how_zh}",
        f"Eligible for {yuan(award.amount)} yuan: {how_en}",
    )


def _how(program: Program, decision: Decision) -> tuple[str, str]:
    spec = program.award
    uncapped = decision.award.uncapped_amount or decision.award.amount
    assert uncapped is not None
    if spec.kind in ("per_item", "rate_of_items"):
        assert spec.items is not None
        counted = sum(1 for i in decision.items or [] if i.counted)
        items = field_label(program.form, spec.items)
        items_zh, items_en = (items.zh, items.en) if items else (spec.items, spec.items)
        if spec.kind == "per_item":
            assert spec.amount is not None
            each = yuan(program.param(spec.amount).value)
            return (
                f"{counted}项{items_zh} × {each}元 = {yuan(uncapped)}元",
                f"{counted} {items_en} × {each} yuan = {yuan(uncapped)} yuan",
            )
        assert spec.rate is not None and spec.base is not None
        rate = _percent(program.param(spec.rate).value)
        base = field_label(program.form, f"{spec.items}.{spec.base}")
        base_zh, base_en = (base.zh, base.en) if base else (spec.base, spec.base)
        return (
            f"{counted}项{items_zh}，{base_zh}合计的{rate} = {yuan(uncapped)}元",
            f"{counted} {items_en}, {rate} of the {base_en} = {yuan(uncapped)} yuan",
        )
    if spec.kind == "fixed":
        return f"定额{yuan(uncapped)}元", f"a fixed {yuan(uncapped)} yuan"
    if spec.kind == "tier":
        return f"按绩效等次{yuan(uncapped)}元", f"{yuan(uncapped)} yuan for its tier"
    return f"申请金额{yuan(uncapped)}元", f"the {yuan(uncapped)} yuan requested"


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"

"""Judging an indicator table (绩效目标表): each indicator met, not met, or left to a reviewer.

Pure: strings in (as the bureau writes them), verdicts out. A target or actual that cannot be
read, or units that cannot be compared, is a ``TableError`` naming the indicator and the field,
never a guess. A qualitative target (提升, 及时 …) is settled only by a reviewer's ``judgment``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from service.performance.notation import (
    Actual,
    NotationError,
    Op,
    Quantity,
    Target,
    comparable,
    holds,
    parse_actual,
    parse_quantity,
    parse_target,
)


@dataclass(frozen=True)
class Indicator:
    name: str
    target: str
    actual: str | None = None
    judgment: bool | None = None  # a reviewer's verdict on a qualitative target
    previous: str | None = None  # last year's value, with growth: the rate is computed
    growth: bool = False
    reference: str | None = None  # the figure a relative target names (市级支持额度), its value


@dataclass
class Verdict:
    name: str
    target: Target
    actual: Actual | None
    met: bool | None  # None: unjudged
    message_zh: str
    message_en: str
    growth_rate: Quantity | None = None
    reference: Quantity | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the target's id and article

    @property
    def status(self) -> str:
        return "unjudged" if self.met is None else ("met" if self.met else "not_met")

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.extra,
            "name": self.name,
            "target": self.target.public(),
            "actual": self.actual.public() if self.actual is not None else None,
            "met": self.met,
            "status": self.status,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }
        if self.growth_rate is not None:
            out["growth_rate"] = self.growth_rate.public()
        if self.reference is not None:
            out["reference"] = self.reference.public()
        return out


@dataclass(frozen=True)
class FieldError:
    index: int
    field: str  # target | actual | previous | reference
    message_zh: str
    message_en: str


class TableError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"[{e.index}].{e.field}: {e.message_en}" for e in errors))
        self.errors = errors


@dataclass
class TableVerdict:
    indicators: list[Verdict]

    @property
    def met(self) -> bool | None:
        """True only when every indicator is met; one not met: False; else unjudged: None."""
        verdicts = [v.met for v in self.indicators]
        if any(m is False for m in verdicts):
            return False
        return None if any(m is None for m in verdicts) else True

    def counts(self) -> dict[str, int]:
        out = {"met": 0, "not_met": 0, "unjudged": 0}
        for v in self.indicators:
            out[v.status] += 1
        return out

    def public(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "counts": self.counts(),
            "indicators": [v.public() for v in self.indicators],
        }


class _Bad(Exception):
    def __init__(self, field: str, error: NotationError) -> None:
        self.field = field
        self.error = error


def judge_table(indicators: list[Indicator]) -> TableVerdict:
    verdicts: list[Verdict] = []
    errors: list[FieldError] = []
    for index, indicator in enumerate(indicators):
        try:
            verdicts.append(judge(indicator))
        except _Bad as bad:
            errors.append(FieldError(index, bad.field, bad.error.message_zh, bad.error.message_en))
    if errors:
        raise TableError(errors)
    return TableVerdict(verdicts)


def judge(ind: Indicator) -> Verdict:
    """One indicator; raises _Bad naming the field that cannot be read."""
    try:
        target = parse_target(ind.target)
    except NotationError as exc:
        raise _Bad("target", exc) from exc
    if ind.previous is not None and not ind.growth:
        raise _Bad(
            "previous",
            NotationError(
                "上年值仅用于计算增长率（growth: true）",
                "previous is only used to compute a growth rate (growth: true)",
            ),
        )
    if target.kind == "qualitative":
        return _qualitative(ind, target)
    if target.kind == "relative":
        return _relative(ind, target)
    return _quantitative(ind, target)


def _judged(ind: Indicator, target: Target, actual: Actual | None, what_zh: str,
            what_en: str) -> Verdict:  # fmt: skip
    if ind.judgment is None:
        return Verdict(
            ind.name, target, actual, None,
            f"{what_zh}，须由评审人员判断（judgment）",
            f"{what_en}: a reviewer's judgment settles it (judgment)",
        )  # fmt: skip
    zh, en = ("评审判断：已达到", "met, by the reviewer's judgment") if ind.judgment else (
        "评审判断：未达到", "not met, by the reviewer's judgment")  # fmt: skip
    return Verdict(ind.name, target, actual, ind.judgment, f"{what_zh}；{zh}", f"{what_en}: {en}")


def _qualitative(ind: Indicator, target: Target) -> Verdict:
    actual = Actual(ind.actual) if ind.actual is not None else None
    return _judged(
        ind, target, actual, f"定性目标「{target.word}」", f"Qualitative target {target.word!r}"
    )


def _relative(ind: Indicator, target: Target) -> Verdict:
    assert target.op is not None and target.reference is not None
    if ind.reference is None or ind.actual is None:
        return _judged(
            ind, target, _actual(ind) if ind.actual is not None else None,
            f"目标相对于「{target.reference}」，未给出该数值（reference）或实际值",
            f"The target is relative to {target.reference!r}, whose value (reference) or the "
            "actual is not given",
        )  # fmt: skip
    try:
        reference = parse_quantity(ind.reference, "参照值", "reference")
    except NotationError as exc:
        raise _Bad("reference", exc) from exc
    actual = _actual(ind)
    assert actual.quantity is not None
    try:
        ref_q, act_q = comparable(reference, actual.quantity)
    except NotationError as exc:
        raise _Bad("actual", exc) from exc
    met = holds(target.op, act_q.base, ref_q.base)
    verdict = _verdict(ind.name, target, actual, met, f"{target.text}（{_show(ref_q)}）")
    verdict.reference = reference
    return verdict


def _actual(ind: Indicator) -> Actual:
    assert ind.actual is not None
    try:
        return parse_actual(ind.actual)
    except NotationError as exc:
        raise _Bad("actual", exc) from exc


def _quantitative(ind: Indicator, target: Target) -> Verdict:
    assert target.op is not None and target.quantity is not None
    if ind.actual is None:
        return Verdict(ind.name, target, None, None, "未报告实际值", "No actual value reported")
    actual = _actual(ind)
    assert actual.quantity is not None
    rate: Quantity | None = None
    if ind.growth:
        rate = _growth(ind, target, actual)
        compared = rate
        bound = None
    else:
        try:
            _, compared = comparable(target.quantity, actual.quantity)
        except NotationError as exc:
            raise _Bad("actual", exc) from exc
        bound = actual.bound
    goal, have = target.quantity.with_unit_of(compared).base, compared.base
    met = _bounded(target.op, have, goal, bound)
    if met is None:
        return Verdict(
            ind.name, target, actual, None,
            f"实际值 {actual.text} 只给出范围，不能判断是否达到目标 {target.text}",
            f"The actual {actual.text} is only a bound: it does not show whether the target "
            f"{target.text} is met",
        )  # fmt: skip
    verdict = _verdict(ind.name, target, actual, met, target.text, rate)
    verdict.growth_rate = rate
    return verdict


def _growth(ind: Indicator, target: Target, actual: Actual) -> Quantity:
    """(this year − last year) / last year, in percent, exact."""
    assert target.quantity is not None and actual.quantity is not None
    if target.quantity.family not in ("percent", "number"):
        raise _Bad(
            "target",
            NotationError("增长率目标应为百分比", "A growth-rate target is a percentage"),
        )
    if ind.previous is None:
        raise _Bad(
            "previous",
            NotationError("计算增长率需要上年值（previous）", "A growth rate needs previous"),
        )
    if actual.bound is not None:
        raise _Bad(
            "actual", NotationError("增长率的本年值应为确数", "This year's value must be exact")
        )
    try:
        previous = parse_quantity(ind.previous, "上年值", "previous")
        last, this = comparable(previous, actual.quantity, "上年值", "previous")
    except NotationError as exc:
        raise _Bad("previous", exc) from exc
    if last.base <= 0:
        raise _Bad(
            "previous",
            NotationError("上年值须大于零才能计算增长率", "previous must be above zero"),
        )
    rate = (this.base - last.base) / last.base * 100
    return Quantity(rate, "%", "percent", Decimal(1), "%")


def _bounded(op: Op, have: Decimal, goal: Decimal, bound: Op | None) -> bool | None:
    """Whether ``have op goal`` holds when ``have`` may only be a bound (≥ have / ≤ have)."""
    if bound is None:
        return holds(op, have, goal)
    at_least = bound == ">="
    if op in (">=", ">"):
        if at_least:
            return True if holds(op, have, goal) else None
        return False if not holds(op, have, goal) else None
    if op in ("<=", "<"):
        if not at_least:
            return True if holds(op, have, goal) else None
        return False if not holds(op, have, goal) else None
    return None


def _show(q: Quantity) -> str:
    if q.family == "ratio":
        return f"{_num(q.value)}:1"
    return f"{_num(q.value)}{q.unit}"


def _num(value: Decimal) -> str:
    text = format(value.quantize(Decimal("0.01")) if value != value.to_integral() else value, "f")
    return text


def _verdict(
    name: str, target: Target, actual: Actual, met: bool, goal: str, rate: Quantity | None = None
) -> Verdict:
    shown = actual.text if rate is None else f"{actual.text}（增长率 {_show(rate)}）"
    shown_en = actual.text if rate is None else f"{actual.text} (growth {_show(rate)})"
    if met:
        return Verdict(
            name, target, actual, True,
            f"实际值 {shown} 达到目标 {goal}", f"The actual {shown_en} meets the target {goal}",
        )  # fmt: skip
    return Verdict(
        name, target, actual, False,
        f"实际值 {shown} 未达到目标 {goal}", f"The actual {shown_en} falls short of the target {goal}",
    )  # fmt: skip


__all__ = [
    "FieldError",
    "Indicator",
    "TableError",
    "TableVerdict",
    "Verdict",
    "judge",
    "judge_table",
]

"""Award arithmetic in Decimal: amounts per item, rates, caps, tier amounts.

Pure: takes a compiled program, the validated application and which items count; returns the
award with the caps it met. Every number comes from the rule file's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from service.money import ZERO, round_down_to_fen
from service.rules.program import Program


@dataclass(frozen=True)
class CapApplied:
    rule: str
    article: str
    limit: Decimal
    binding: bool  # whether this cap lowered the amount


@dataclass
class Award:
    amount: Decimal | None  # None: the amount is set per round (第二十一条 tiers)
    uncapped_amount: Decimal | None
    caps_applied: list[CapApplied] = field(default_factory=list)
    item_amounts: dict[str, list[Decimal]] = field(default_factory=dict)
    pending: str | None = None  # the parameter whose value is still to be set

    @staticmethod
    def nothing() -> Award:
        return Award(ZERO, ZERO)


def item_amounts(program: Program, application: BaseModel) -> dict[str, list[Decimal]]:
    """Each item's own share before any cap (the ``amount`` of ``items[]``)."""
    spec = program.award
    if spec.items is None:
        return {}
    items = getattr(application, spec.items)
    if spec.kind == "per_item":
        assert spec.amount is not None
        per_item = program.param(spec.amount).value
        return {spec.items: [per_item for _ in items]}
    if spec.kind == "rate_of_items":
        assert spec.rate is not None and spec.base is not None
        rate = program.param(spec.rate).value
        return {spec.items: [round_down_to_fen(getattr(i, spec.base) * rate) for i in items]}
    return {}


def compute_award(
    program: Program,
    application: BaseModel,
    counted: dict[str, list[int]],
    overrides: dict[str, Any] | None = None,
) -> Award:
    """The award of an eligible application; ``counted`` lists the counted items per list."""
    spec = program.award
    overrides = overrides or {}
    per_item = item_amounts(program, application)
    uncapped: Decimal | None
    if spec.kind == "per_item":
        assert spec.items is not None and spec.amount is not None
        uncapped = program.param(spec.amount).value * len(counted.get(spec.items, []))
    elif spec.kind == "rate_of_items":
        # Sum the eligible base first, multiply, then round down (spec: percent rates).
        assert spec.items is not None and spec.rate is not None and spec.base is not None
        items = getattr(application, spec.items)
        base = sum((getattr(items[i], spec.base) for i in counted.get(spec.items, [])), ZERO)
        uncapped = round_down_to_fen(base * program.param(spec.rate).value)
    elif spec.kind == "requested":
        assert spec.requested is not None
        uncapped = getattr(application, spec.requested)
    elif spec.kind == "fixed":
        assert spec.amount is not None
        uncapped = program.param(spec.amount).value
    else:
        assert spec.tiers is not None and spec.tier_field is not None
        tiers = overrides.get(spec.tiers, program.param(spec.tiers).value)
        if tiers is None:
            return Award(None, None, item_amounts=per_item, pending=spec.tiers)
        tier = getattr(application, spec.tier_field)
        uncapped = Decimal(tiers.get(tier, ZERO))
    award = Award(uncapped, uncapped, item_amounts=per_item)
    apply_caps(program, award)
    return award


def apply_caps(program: Program, award: Award) -> None:
    for name in program.award.caps:
        cap = program.param(name)
        assert award.amount is not None
        binding = award.amount > cap.value
        award.caps_applied.append(CapApplied(name, cap.article, cap.value, binding))
        award.amount = min(award.amount, cap.value)

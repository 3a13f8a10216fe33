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


@dataclass(frozen=True)
class Tranche:
    stage: str  # first_year | mid_term | acceptance
    share: Decimal
    amount: Decimal


def disburse(program: Program, application: BaseModel, award: Award) -> list[Tranche] | None:
    """Staged payment (政策兑现方式): every tranche but the last is ROUND_DOWN(award × share); the
    last is the remainder, so the tranches add up to the award exactly. The first-year cap, where
    the guide year has one, bounds the first-year tranche (the excess moves to the last)."""
    spec = program.disbursement
    if spec is None or award.amount is None:
        return None
    duration = getattr(application, spec.duration_field)
    schedule = spec.schedules[duration]
    first_cap = program.parameters.get(spec.first_year_cap) if spec.first_year_cap else None
    tranches: list[Tranche] = []
    for index, step in enumerate(schedule):
        share = Decimal(step.share)
        if index == len(schedule) - 1:
            amount = award.amount - sum((t.amount for t in tranches), ZERO)
        else:
            amount = round_down_to_fen(award.amount * share)
            if step.stage == "first_year" and first_cap is not None and award.amount > 0:
                binding = amount > first_cap.value
                award.caps_applied.append(
                    CapApplied(first_cap.name, first_cap.article, first_cap.value, binding)
                )
                amount = min(amount, first_cap.value)
        tranches.append(Tranche(step.stage, share, amount))
    return tranches


def suggestions(program: Program, application: BaseModel, failed: set[str]) -> dict[str, Decimal]:
    """E.g. when self funds fall short of the ratio: the largest amount they allow, to the fen
    (rounded down, so ratio × amount never exceeds the funds), and not above the cap."""
    out: dict[str, Decimal] = {}
    for spec in program.suggestions:
        if spec.when_failed not in failed:
            continue
        ratio = program.param(spec.by).value
        amount = round_down_to_fen(getattr(application, spec.divide) / ratio)
        if spec.cap is not None and spec.cap in program.parameters:
            amount = min(amount, program.param(spec.cap).value)
        out[spec.name] = amount
    return out


def requirements(program: Program, requested: Decimal) -> dict[str, Any]:
    """The other way round: what a wanted amount needs (minimum self funds, district funds)."""
    award = requested
    for name in program.award.caps:
        award = min(award, program.param(name).value)
    out: dict[str, Any] = {"requested_amount": requested, "award": award, "needs": []}
    for req in program.requirements:
        base = requested if req.of == "requested_amount" else award
        factor = program.param(req.times).value if req.times else Decimal(1)
        # Rounded UP to the fen: the minimum that satisfies ">=" exactly.
        minimum = -round_down_to_fen(-(base * factor))
        # The ratio's own article names the guide year's table (表1-9 for 2022, 表1-4 for 2023).
        article = program.param(req.times).article if req.times else req.article
        out["needs"].append(
            {
                "name": req.name,
                "article": article,
                "zh": req.zh,
                "en": req.en,
                "minimum": minimum,
            }
        )
    return out

"""The Decimal interpreter of the award plan (``service.rules.award_plan``): amounts per item,
rates, caps, tier amounts, tranches, suggestions and requirements.

Pure: takes a compiled program, the validated application and which items count; returns the
award with the caps it met. Every number comes from the plan, which the loader compiled from
the rule file's parameters; the batch audit runs the same plan in integer fen
(``service.engine.polars_awards``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from service.money import ZERO, round_down_to_fen
from service.rules.award_plan import AwardPlan, Base, Fixed, PerItem, RateOfItems, Requested, Tiers
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


def _base(
    base: Base, application: BaseModel, counted: dict[str, list[int]]
) -> tuple[Decimal | None, dict[str, list[Decimal]]]:
    """The plan's base step: the uncapped amount (None: set per round) and each item's own
    share before any cap (the ``amount`` of ``items[]``)."""
    match base:
        case Requested(field=name):
            return getattr(application, name), {}
        case PerItem(items=name, amount=amount):
            items = getattr(application, name)
            return amount * len(counted.get(name, [])), {name: [amount for _ in items]}
        case RateOfItems(items=name, base=key, rate=rate):
            items = getattr(application, name)
            shares = [round_down_to_fen(getattr(i, key) * rate) for i in items]
            # Sum the eligible base first, multiply, then round down (spec: percent rates).
            total = sum((getattr(items[i], key) for i in counted.get(name, [])), ZERO)
            return round_down_to_fen(total * rate), {name: shares}
        case Fixed(amount=amount):
            return amount, {}
        case Tiers(field=name, amounts=amounts):
            if amounts is None:
                return None, {}
            return Decimal(amounts.get(getattr(application, name), ZERO)), {}


def compute_award(
    program: Program,
    application: BaseModel,
    counted: dict[str, list[int]],
    overrides: dict[str, Any] | None = None,
) -> Award:
    """The award of an eligible application; ``counted`` lists the counted items per list."""
    plan = program.plan.for_round(overrides)
    uncapped, per_item = _base(plan.base, application, counted)
    if uncapped is None:
        return Award(None, None, item_amounts=per_item, pending=plan.tiers)
    award = Award(uncapped, uncapped, item_amounts=per_item)
    apply_caps(plan, award)
    return award


def apply_caps(plan: AwardPlan, award: Award) -> None:
    for cap in plan.caps:
        assert award.amount is not None
        binding = award.amount > cap.limit
        award.caps_applied.append(CapApplied(cap.name, cap.article, cap.limit, binding))
        award.amount = min(award.amount, cap.limit)


@dataclass(frozen=True)
class Tranche:
    stage: str  # first_year | mid_term | acceptance
    share: Decimal
    amount: Decimal


def disburse(program: Program, application: BaseModel, award: Award) -> list[Tranche] | None:
    """Staged payment (政策兑现方式): every tranche but the last is ROUND_DOWN(award × share); the
    last is the remainder, so the tranches add up to the award exactly. The first-year cap, where
    the guide year has one, bounds the first-year tranche (the excess moves to the last)."""
    spec = program.plan.disbursement
    if spec is None or award.amount is None:
        return None
    schedule = spec.schedules[getattr(application, spec.duration_field)]
    first_cap = spec.first_year_cap
    tranches: list[Tranche] = []
    for index, step in enumerate(schedule):
        if index == len(schedule) - 1:
            amount = award.amount - sum((t.amount for t in tranches), ZERO)
        else:
            amount = round_down_to_fen(award.amount * step.share)
            if step.stage == "first_year" and first_cap is not None and award.amount > 0:
                binding = amount > first_cap.limit
                award.caps_applied.append(
                    CapApplied(first_cap.name, first_cap.article, first_cap.limit, binding)
                )
                amount = min(amount, first_cap.limit)
        tranches.append(Tranche(step.stage, step.share, amount))
    return tranches


def suggestions(program: Program, application: BaseModel, failed: set[str]) -> dict[str, Decimal]:
    """E.g. when self funds fall short of the ratio: the largest amount they allow, to the fen
    (rounded down, so ratio × amount never exceeds the funds), and not above the cap."""
    out: dict[str, Decimal] = {}
    for spec in program.plan.suggestions:
        if spec.when_failed not in failed:
            continue
        amount = round_down_to_fen(getattr(application, spec.divide) / spec.by)
        if spec.cap is not None:
            amount = min(amount, spec.cap)
        out[spec.name] = amount
    return out


def requirements(program: Program, requested: Decimal) -> dict[str, Any]:
    """The other way round: what a wanted amount needs (minimum self funds, district funds)."""
    plan = program.plan
    award = plan.cap(requested)
    out: dict[str, Any] = {"requested_amount": requested, "award": award, "needs": []}
    for req in plan.requirements:
        base = requested if req.of == "requested_amount" else award
        factor = req.times if req.times is not None else Decimal(1)
        # Rounded UP to the fen: the minimum that satisfies ">=" exactly.
        minimum = -round_down_to_fen(-(base * factor))
        out["needs"].append(
            {
                "name": req.name,
                "article": req.article,
                "zh": req.zh,
                "en": req.en,
                "minimum": minimum,
            }
        )
    return out

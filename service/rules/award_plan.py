"""The award plan: what a program's ``award`` (with its disbursement, suggestions and
requirements) means, compiled once by the loader from the rule file.

One base step, rounded down to the fen where it multiplies (a requested amount; per-item amount ×
counted items; rate × the *sum* of the counted base; a fixed amount; a tier's amount), then the
caps in the rule file's order. Tranches: a schedule per project duration, every tranche but the
last ``ROUND_DOWN(award × share)``, the first-year tranche under its cap, the last the remainder.

Two interpreters run a plan, each dispatching on the step types in one place: Decimal for the
service (``service.awards``) and integer fen over polars columns for the batch audit
(``service.engine.polars_awards``). What the audit and the loader check of an award (which
amounts one unit can be paid: ``unit_amounts``) is derived here from the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from service.money import to_fen
from service.rules.fields import Scope
from service.rules.model import AwardSpec, DisbursementSpec, RequirementSpec, SuggestionSpec
from service.rules.params import Parameter


class PlanError(ValueError):
    """A rule file's award names something that is not there; ``part`` is the key at fault
    (``award``, ``disbursement``, ``suggestions``, ``requirements``) for the line number."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


# --- the base step: one of these ------------------------------------------------------------


@dataclass(frozen=True)
class Requested:
    """The requested amount (a money field of the request): 第六条–第十八条, stcsm."""

    field: str


@dataclass(frozen=True)
class PerItem:
    """``amount`` per counted item (第十九条, 第二十二条)."""

    items: str
    param: str
    amount: Decimal


@dataclass(frozen=True)
class RateOfItems:
    """``rate`` × the sum of the counted items' ``base``, rounded down once (第二十条)."""

    items: str
    base: str
    param: str
    rate: Decimal


@dataclass(frozen=True)
class Fixed:
    """Exactly ``amount``, whatever was requested (第十条)."""

    param: str
    amount: Decimal


@dataclass(frozen=True)
class Tiers:
    """The amount of the application's tier; a tier without an amount gets 0 (第二十一条).
    ``amounts`` None: set per round, not computable from the rules alone."""

    field: str
    param: str
    amounts: Mapping[int, Decimal] | None


Base = Requested | PerItem | RateOfItems | Fixed | Tiers


@dataclass(frozen=True)
class Cap:
    name: str
    article: str
    limit: Decimal


@dataclass(frozen=True)
class Share:
    stage: str  # first_year | mid_term | acceptance
    share: Decimal


@dataclass(frozen=True)
class Disbursement:
    duration_field: str
    schedules: Mapping[int, tuple[Share, ...]]
    first_year_cap: Cap | None  # the guide year's, where it has one


@dataclass(frozen=True)
class Suggestion:
    """When ``when_failed`` fails: ``round_down(divide / by)``, not above ``cap``."""

    name: str
    when_failed: str
    divide: str
    by: Decimal
    cap: Decimal | None


@dataclass(frozen=True)
class Requirement:
    """The minimum of a fund for a wanted amount: ``times`` × (requested amount or award)."""

    name: str
    article: str
    zh: str
    en: str
    of: str  # requested_amount | award
    times: Decimal | None


@dataclass(frozen=True)
class UnitAmounts:
    """What one unit (one award) can be paid under a plan, in fen: one of ``values`` when they
    are known, else any multiple of ``multiple_of`` up to ``at_most``."""

    values: tuple[int, ...] | None
    multiple_of: int
    at_most: int | None


@dataclass(frozen=True)
class AwardPlan:
    base: Base
    caps: tuple[Cap, ...] = ()
    disbursement: Disbursement | None = None
    suggestions: tuple[Suggestion, ...] = ()
    requirements: tuple[Requirement, ...] = ()

    @property
    def items(self) -> str | None:
        """The item list the award is computed from, if any."""
        return self.base.items if isinstance(self.base, PerItem | RateOfItems) else None

    @property
    def fields(self) -> tuple[str, ...]:
        """The request fields the plan reads (beside the items): the requested amount or the
        tier, and the project's duration for its tranches."""
        base = self.base
        own = (base.field,) if isinstance(base, Requested | Tiers) else ()
        return own + ((self.disbursement.duration_field,) if self.disbursement else ())

    @property
    def item_field(self) -> str | None:
        """The field of each item the plan reads (the base of a rate)."""
        return self.base.base if isinstance(self.base, RateOfItems) else None

    @property
    def tiers(self) -> str | None:
        return self.base.param if isinstance(self.base, Tiers) else None

    def for_round(self, overrides: Mapping[str, Any] | None) -> AwardPlan:
        """The plan with a round's own tier amounts (第二十一条: set per round)."""
        base = self.base
        if not overrides or not isinstance(base, Tiers) or base.param not in overrides:
            return self
        raw = overrides[base.param]
        amounts = None if raw is None else {int(k): Decimal(v) for k, v in raw.items()}
        return replace(self, base=replace(base, amounts=amounts))

    def cap(self, amount: Decimal) -> Decimal:
        for cap in self.caps:
            amount = min(amount, cap.limit)
        return amount

    def unit_amounts(self) -> UnitAmounts:
        """Derived from the steps, for the audit's summary checks (a total of N units must be
        made of these) and its caps: a capped amount is the cap or below it."""
        at_most = min((to_fen(c.limit) for c in self.caps), default=None)

        def capped(fen: int) -> int:
            return fen if at_most is None else min(fen, at_most)

        base = self.base
        amounts: list[Decimal] | None = None
        if isinstance(base, Fixed):
            amounts = [base.amount]
        elif isinstance(base, Tiers) and base.amounts is not None:
            amounts = list(base.amounts.values())
        if amounts is not None:
            values = tuple(sorted({capped(to_fen(a)) for a in amounts}))
            return UnitAmounts(values, math.gcd(*values) or 1, max(values, default=0))
        if isinstance(base, PerItem):
            step = to_fen(base.amount)
            return UnitAmounts(None, math.gcd(step, at_most or 0) or 1, at_most)
        return UnitAmounts(None, 1, at_most)


def sum_of(values: tuple[int, ...], units: int, total: int, budget: int = 200_000) -> bool | None:
    """Whether ``total`` is a sum of exactly ``units`` of ``values`` (repeats allowed), for any
    number of values: the count of each value but the two smallest is tried in turn, only those
    that leave a total the remaining units can reach, and the last two are solved for. None:
    more than ``budget`` counts to try (not decided)."""
    ordered = sorted(set(values), reverse=True)
    tried = 0

    def reach(at: int, units: int, total: int) -> bool | None:
        nonlocal tried
        rest = ordered[at:]
        if not rest:
            return units == 0 and total == 0
        if not rest[-1] * units <= total <= rest[0] * units:
            return False
        if len(rest) == 1:
            return total == rest[0] * units
        if len(rest) == 2:
            high, low = rest
            extra = total - low * units
            return extra % (high - low) == 0 and 0 <= extra // (high - low) <= units
        # The counts of ``high`` that leave a total the other values can make with the rest.
        high, second, low, undecided = rest[0], rest[1], rest[-1], False
        first = max(0, -(-(total - second * units) // (high - second)))
        last = min(units, (total - low * units) // (high - low))
        for count in range(first, last + 1):
            tried += 1
            if tried > budget:
                return None
            found = reach(at + 1, units - count, total - high * count)
            if found:
                return True
            undecided |= found is None
        return None if undecided else False

    return reach(0, units, total)


# --- compiling a rule file's award ----------------------------------------------------------


def _param(
    params: Mapping[str, Parameter], name: str | None, types: tuple[str, ...], what: str
) -> Parameter:
    if name is None or name not in params:
        raise PlanError("award", f"award.{what}: no parameter '{name}'")
    if params[name].type not in types:
        raise PlanError("award", f"award.{what}: '{name}' must be a {' or '.join(types)}")
    return params[name]


def _field(scope: Scope, name: str | None, kind: str, what: str) -> str:
    fields = scope.fields
    if name is None or name not in fields or fields[name].kind != kind:
        raise PlanError("award", f"award.{what}: '{name}' must be a {kind} field")
    return name


def _base(
    spec: AwardSpec, params: Mapping[str, Parameter], scope: Scope, lists: Mapping[str, Scope]
) -> Base:
    kind = spec.kind
    if kind in ("per_item", "rate_of_items"):
        if spec.items is None or spec.items not in lists:
            raise PlanError("award", f"award.items: no item group '{spec.items}'")
        if kind == "per_item":
            p = _param(params, spec.amount, ("money",), "amount")
            return PerItem(spec.items, p.name, p.value)
        p = _param(params, spec.rate, ("rate",), "rate")
        base = _field(lists[spec.items], spec.base, "money", "base")
        return RateOfItems(spec.items, base, p.name, p.value)
    if kind == "requested":
        return Requested(_field(scope, spec.requested, "money", "requested"))
    if kind == "fixed":
        p = _param(params, spec.amount, ("money",), "amount")
        return Fixed(p.name, p.value)
    p = _param(params, spec.tiers, ("money_by_tier",), "tiers")
    field = _field(scope, spec.tier_field, "int", "tier_field")
    return Tiers(field, p.name, None if p.value is None else dict(p.value))


def _disbursement(
    spec: DisbursementSpec, params: Mapping[str, Parameter], scope: Scope
) -> Disbursement:
    field = scope.fields.get(spec.duration_field)
    if field is None or field.kind != "int":
        raise PlanError(
            "disbursement",
            f"disbursement.duration_field: no whole-number field '{spec.duration_field}'",
        )
    schedules = {}
    for years, steps in spec.schedules.items():
        shares = tuple(Share(s.stage, Decimal(s.share)) for s in steps)
        if sum(s.share for s in shares) != 1:
            raise PlanError(
                "disbursement", f"disbursement.schedules[{years}]: shares must add up to 1"
            )
        schedules[int(years)] = shares
    first = params.get(spec.first_year_cap) if spec.first_year_cap else None  # may be absent
    cap = None if first is None else Cap(first.name, first.article, first.value)
    return Disbursement(spec.duration_field, schedules, cap)


def _suggestion(
    spec: SuggestionSpec, params: Mapping[str, Parameter], scope: Scope, ids: set[str]
) -> Suggestion:
    if spec.when_failed not in ids:
        raise PlanError("suggestions", f"suggestion {spec.name}: no condition '{spec.when_failed}'")
    field = scope.fields.get(spec.divide)
    if field is None or field.kind != "money":
        raise PlanError(
            "suggestions", f"suggestion {spec.name}: '{spec.divide}' must be a money field"
        )
    if spec.by not in params or params[spec.by].type != "ratio":
        raise PlanError(
            "suggestions", f"suggestion {spec.name}: '{spec.by}' must be a ratio parameter"
        )
    cap = params[spec.cap].value if spec.cap is not None and spec.cap in params else None
    return Suggestion(spec.name, spec.when_failed, spec.divide, params[spec.by].value, cap)


def _requirement(spec: RequirementSpec, params: Mapping[str, Parameter]) -> Requirement:
    if spec.times is None:
        return Requirement(spec.name, spec.article, spec.zh, spec.en, spec.of, None)
    if spec.times not in params:
        raise PlanError("requirements", f"requirement {spec.name}: no parameter '{spec.times}'")
    # The ratio's own article names the guide year's table (表1-9 for 2022, 表1-4 for 2023).
    p = params[spec.times]
    return Requirement(spec.name, p.article, spec.zh, spec.en, spec.of, p.value)


def compile_plan(
    award: AwardSpec,
    params: Mapping[str, Parameter],
    scope: Scope,
    lists: Mapping[str, Scope],
    condition_ids: set[str],
    disbursement: DisbursementSpec | None = None,
    suggestions: tuple[SuggestionSpec, ...] = (),
    requirements: tuple[RequirementSpec, ...] = (),
) -> AwardPlan:
    """The plan of one program (one edition): every name resolved to its parameter's value,
    field or item list (``lists``: the item groups' scopes); ``PlanError`` for a name that
    is not there."""
    base = _base(award, params, scope, lists)
    caps = []
    for name in award.caps:
        p = _param(params, name, ("money",), "caps")
        caps.append(Cap(p.name, p.article, p.value))
    return AwardPlan(
        base,
        tuple(caps),
        None if disbursement is None else _disbursement(disbursement, params, scope),
        tuple(_suggestion(s, params, scope, condition_ids) for s in suggestions),
        tuple(_requirement(r, params) for r in requirements),
    )

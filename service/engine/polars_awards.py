"""The integer-fen interpreter of the award plan (``service.rules.award_plan``), as polars
expressions for the batch audit; ``service.awards`` is the Decimal one.

Same order of operations as the Decimal code, so the two agree to the fen: per-item amounts
times the counted items; rates on the *sum* of the counted base, then rounded down once;
caps applied in the plan's order; tranches each rounded down but the last, the remainder. A rate
or a share ``p/q`` (0.1% is 1/1000) is applied as ``(amount × p) // q`` in Int128: exact, and
floor is round-down for amounts that are never negative.

The frame a program's award is computed on has one row per application with the counted items
(``counted_n``), the sum of their base (``counted_base``, fen), and the request's own columns by
fact key (``requested_amount``, ``performance_tier``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from service.money import to_fen
from service.rules.award_plan import AwardPlan, Fixed, PerItem, RateOfItems, Requested, Tiers
from service.rules.program import Program

COUNTED_N = "counted_n"
COUNTED_BASE = "counted_base"
INT64 = pl.Int64


def _key(path: str) -> str:
    return path.replace(".", "__")


def times(amount_fen: pl.Expr, factor: Decimal) -> pl.Expr:
    """``round_down_to_fen(amount × factor)`` in fen."""
    p, q = factor.as_integer_ratio()
    return ((amount_fen.cast(pl.Int128) * p) // q).cast(INT64)


@dataclass(frozen=True)
class _Fen:
    """The base step over columns: what it reads, the uncapped amount, one item's share."""

    needs: tuple[str, ...]  # request columns (fact keys)
    item_base: str | None = None  # the item column the rate applies to
    uncapped: pl.Expr | None = None  # None: set per round (第二十一条 without tier amounts)
    share: pl.Expr | None = None


def _base(plan: AwardPlan, counted_n: pl.Expr, counted_base: pl.Expr) -> _Fen:
    match plan.base:
        case Requested(field=name):
            return _Fen((_key(name),), None, pl.col(_key(name)).cast(INT64))
        case PerItem(amount=amount):
            each = to_fen(amount)
            return _Fen((), None, counted_n.cast(INT64) * each, pl.lit(each, dtype=INT64))
        case RateOfItems(base=base, rate=rate):
            key = _key(base)
            return _Fen((), key, times(counted_base, rate), times(pl.col(key), rate))
        case Fixed(amount=amount):
            return _Fen((), None, pl.lit(to_fen(amount), dtype=INT64))
        case Tiers(field=name, amounts=amounts):
            if amounts is None:
                return _Fen((_key(name),))
            mapping = {tier: to_fen(amount) for tier, amount in amounts.items()}
            tier = pl.col(_key(name)).replace_strict(mapping, default=0, return_dtype=INT64)
            return _Fen((_key(name),), None, tier.cast(INT64))


@dataclass(frozen=True)
class AwardFormula:
    """One program's plan (with a round's tier amounts) over columns, in fen."""

    plan: AwardPlan

    def _fen(self, counted_n: pl.Expr | None = None, counted_base: pl.Expr | None = None) -> _Fen:
        return _base(
            self.plan,
            pl.col(COUNTED_N) if counted_n is None else counted_n,
            pl.col(COUNTED_BASE) if counted_base is None else counted_base,
        )

    @property
    def needs(self) -> tuple[str, ...]:
        """Request columns the formula reads (beside the counted items)."""
        return self._fen().needs

    @property
    def items(self) -> str | None:
        return self.plan.items

    @property
    def item_base(self) -> str | None:
        """The item column summed under a rate (its counted sum is ``counted_base``)."""
        return self._fen().item_base

    def caps_fen(self) -> list[tuple[str, int]]:
        return [(cap.name, to_fen(cap.limit)) for cap in self.plan.caps]

    def cap_fen(self) -> int | None:
        """The smallest cap (a single application can never receive more)."""
        caps = [fen for _, fen in self.caps_fen()]
        return min(caps) if caps else None

    def item_share(self) -> pl.Expr | None:
        """One item's own share before any cap (``items[].amount``), on the items' frame."""
        return self._fen().share

    def amount(
        self, counted_n: pl.Expr | None = None, counted_base: pl.Expr | None = None
    ) -> pl.Expr:
        """The award of an eligible application: uncapped, then every cap in order."""
        uncapped = self._fen(counted_n, counted_base).uncapped
        if uncapped is None:
            return pl.lit(None, dtype=INT64)
        out = uncapped
        for _, fen in self.caps_fen():
            out = pl.min_horizontal(out, pl.lit(fen, dtype=INT64))
        # min_horizontal skips nulls: an amount that cannot be computed must stay null.
        return pl.when(uncapped.is_null()).then(None).otherwise(out).cast(INT64)

    @property
    def stages(self) -> tuple[str, ...]:
        d = self.plan.disbursement
        if d is None:
            return ()
        return tuple(dict.fromkeys(s.stage for steps in d.schedules.values() for s in steps))

    def tranches(self, amount: pl.Expr) -> dict[str, pl.Expr]:
        """Each stage's tranche of ``amount`` (null where the duration's schedule has none)."""
        d = self.plan.disbursement
        if d is None:
            return {}
        duration = pl.col(_key(d.duration_field))
        cap = None if d.first_year_cap is None else to_fen(d.first_year_cap.limit)
        out: dict[str, Any] = {}
        for years, steps in d.schedules.items():
            paid: pl.Expr = pl.lit(0, dtype=INT64)
            for index, step in enumerate(steps):
                if index == len(steps) - 1:
                    tranche = amount - paid
                else:
                    tranche = times(amount, step.share)
                    if step.stage == "first_year" and cap is not None:
                        tranche = pl.when(tranche > cap).then(cap).otherwise(tranche)
                    paid = paid + tranche
                chain = out.get(step.stage)
                when = duration == years
                out[step.stage] = (pl if chain is None else chain).when(when).then(tranche)
        return {stage: chain.otherwise(None).cast(INT64) for stage, chain in out.items()}


def formula(program: Program, overrides: dict[str, Any] | None = None) -> AwardFormula:
    return AwardFormula(program.plan.for_round(overrides))

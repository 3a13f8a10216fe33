"""The award formulas of ``service.awards`` as Int64-fen polars expressions, for the batch audit.

Same order of operations as the Decimal code, so the two agree to the fen: per-item amounts
times the counted items; rates on the *sum* of the counted base, then rounded down once;
caps applied in the rule file's order. A rate ``p/q`` (0.1% is 1/1000) is applied as
``(base × p) // q`` in Int128: exact, and floor is round-down for amounts that are never negative.

The frame a program's award is computed on has one row per application with:
``counted_n`` (counted items), ``counted_base`` (sum of their base, fen), and the request's own
columns by fact key (``requested_amount``, ``performance_tier``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from service.money import to_fen
from service.rules.program import Program

COUNTED_N = "counted_n"
COUNTED_BASE = "counted_base"


def _rate(value: Decimal) -> tuple[int, int]:
    p, q = value.as_integer_ratio()
    return p, q


def rate_of(base_fen: pl.Expr, rate: Decimal) -> pl.Expr:
    """``round_down_to_fen(base × rate)`` in fen."""
    p, q = _rate(rate)
    return ((base_fen.cast(pl.Int128) * p) // q).cast(pl.Int64)


@dataclass(frozen=True)
class AwardFormula:
    """What one program's award needs and how it is computed, in fen."""

    program: Program
    tiers: dict[int, Decimal] | None

    @property
    def kind(self) -> str:
        return self.program.award.kind

    @property
    def needs(self) -> tuple[str, ...]:
        """Request columns the formula reads (beside the counted items)."""
        spec = self.program.award
        if spec.kind == "requested" and spec.requested:
            return (spec.requested.replace(".", "__"),)
        if spec.kind == "tier" and spec.tier_field:
            return (spec.tier_field.replace(".", "__"),)
        return ()

    @property
    def uses_items(self) -> bool:
        return self.kind in ("per_item", "rate_of_items")

    @property
    def pending(self) -> bool:
        """第二十一条 without tier amounts: the amount is set per round, not computable."""
        return self.kind == "tier" and self.tiers is None

    def caps_fen(self) -> list[tuple[str, int]]:
        return [(name, to_fen(self.program.param(name).value)) for name in self.program.award.caps]

    def cap_fen(self) -> int | None:
        """The smallest cap (a single application can never receive more)."""
        caps = [fen for _, fen in self.caps_fen()]
        return min(caps) if caps else None

    def fixed_fen(self) -> int | None:
        spec = self.program.award
        if spec.kind != "fixed" or spec.amount is None:
            return None
        return to_fen(self.program.param(spec.amount).value)

    def per_item_fen(self) -> int | None:
        spec = self.program.award
        if spec.kind != "per_item" or spec.amount is None:
            return None
        return to_fen(self.program.param(spec.amount).value)

    def item_share(self, base_key: str | None = None) -> pl.Expr | None:
        """One item's own share before any cap (``item_amounts``)."""
        spec = self.program.award
        if spec.kind == "per_item":
            return pl.lit(self.per_item_fen(), dtype=pl.Int64)
        if spec.kind == "rate_of_items":
            assert spec.rate is not None and spec.base is not None
            return rate_of(pl.col(base_key or spec.base.replace(".", "__")), self.rate())
        return None

    def rate(self) -> Decimal:
        assert self.program.award.rate is not None
        value: Decimal = self.program.param(self.program.award.rate).value
        return value

    def uncapped(
        self, counted_n: pl.Expr | None = None, counted_base: pl.Expr | None = None
    ) -> pl.Expr:
        spec = self.program.award
        if spec.kind == "per_item":
            n = pl.col(COUNTED_N) if counted_n is None else counted_n
            return n.cast(pl.Int64) * (self.per_item_fen() or 0)
        if spec.kind == "rate_of_items":
            base = pl.col(COUNTED_BASE) if counted_base is None else counted_base
            return rate_of(base, self.rate())
        if spec.kind == "requested":
            return pl.col(self.needs[0]).cast(pl.Int64)
        if spec.kind == "fixed":
            return pl.lit(self.fixed_fen(), dtype=pl.Int64)
        if self.tiers is None:
            return pl.lit(None, dtype=pl.Int64)
        mapping = {tier: to_fen(amount) for tier, amount in self.tiers.items()}
        return (
            pl.col(self.needs[0])
            .replace_strict(mapping, default=0, return_dtype=pl.Int64)
            .cast(pl.Int64)
        )

    def amount(
        self, counted_n: pl.Expr | None = None, counted_base: pl.Expr | None = None
    ) -> pl.Expr:
        """The award of an eligible application: uncapped, then every cap in order."""
        uncapped = self.uncapped(counted_n, counted_base)
        out = uncapped
        for _, fen in self.caps_fen():
            out = pl.min_horizontal(out, pl.lit(fen, dtype=pl.Int64))
        # min_horizontal skips nulls: an amount that cannot be computed must stay null.
        return pl.when(uncapped.is_null()).then(None).otherwise(out).cast(pl.Int64)


def formula(program: Program, overrides: dict[str, Any] | None = None) -> AwardFormula:
    tiers = None
    spec = program.award
    if spec.kind == "tier" and spec.tiers is not None:
        raw = (overrides or {}).get(spec.tiers, program.param(spec.tiers).value)
        tiers = None if raw is None else {int(k): Decimal(v) for k, v in raw.items()}
    return AwardFormula(program, tiers)

"""``service.decision.decide`` for a whole batch at once, in polars.

Input: one frame of applications (one row each, keyed by ``rec``) and, per item list, one frame
of items (``rec`` and ``seq``, their order inside the application). Output: the same frames
with, per condition, whether it holds and whether it failed (``fail:<id>``: checked and false),
which items count (an item that fails no error condition, and is the first of its
``distinct_by`` value among those in its application), eligibility and the award in fen.

The rules are decide()'s, read from the same place (``ItemGroup``, ``Program.required``): an
application is eligible when every condition it requires holds, no item of a list that rejects
the application fails, and (``at_least_one``) some item counts; an ineligible one gets 0. With a
disbursement, each stage's tranche of the award (``tranche:<stage>``). Conditions the batch
cannot check (no column for a fact, or a required fact missing on that row) are not failures:
an audit reports what it can prove.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from service.engine.polars_awards import AwardFormula, formula
from service.engine.polars_eval import CompiledCondition, compile_conditions
from service.rules.program import Condition, ItemGroup, Program

REC = "rec"
SEQ = "seq"
OK = "ok"
DUP = "dup"
COUNTED = "counted"
SHARE = "share"
ELIGIBLE = "eligible"
ENTITLED = "entitled"


def tranche_col(stage: str) -> str:
    return f"tranche:{stage}"


def fail_col(condition_id: str) -> str:
    return f"fail:{condition_id}"


def holds_col(condition_id: str) -> str:
    return f"holds:{condition_id}"


def known_col(list_name: str) -> str:
    """Per application: whether its items of this list are known (an audit may lack them)."""
    return f"items_known:{list_name}"


@dataclass(frozen=True)
class CompiledGroup:
    group: ItemGroup
    conditions: tuple[CompiledCondition, ...]

    @property
    def distinct_key(self) -> str | None:
        d = self.group.distinct_by
        return None if d is None else d.replace(".", "__")


@dataclass(frozen=True)
class CompiledProgram:
    program: Program
    conditions: tuple[CompiledCondition, ...]
    groups: tuple[CompiledGroup, ...]
    award: AwardFormula

    def group(self, list_name: str) -> CompiledGroup | None:
        return next((g for g in self.groups if g.group.list_name == list_name), None)

    @property
    def main_group(self) -> CompiledGroup | None:
        """The list an audit's detail rows belong to: the award's items, else the only list."""
        if self.award.items:
            return self.group(self.award.items)
        return self.groups[0] if self.groups else None


def compile_program(program: Program, overrides: dict[str, Any] | None = None) -> CompiledProgram:
    groups = tuple(CompiledGroup(g, compile_conditions(g.conditions)) for g in program.item_groups)
    return CompiledProgram(
        program, compile_conditions(program.conditions), groups, formula(program, overrides)
    )


def condition_results(
    conditions: tuple[CompiledCondition, ...], columns: set[str]
) -> list[pl.Expr]:
    """``holds:<id>`` and ``fail:<id>`` for every condition (unavailable ones never fail)."""
    out: list[pl.Expr] = []
    for cc in conditions:
        cid = cc.condition.id
        if cc.available(columns):
            out.append(cc.holds.alias(holds_col(cid)))
            out.append((cc.checked & ~cc.holds).alias(fail_col(cid)))
        else:
            out.append(pl.lit(None, dtype=pl.Boolean).alias(holds_col(cid)))
            out.append(pl.lit(False).alias(fail_col(cid)))
    return out


def _fails(conditions: tuple[Condition, ...]) -> list[str]:
    return [fail_col(c.id) for c in conditions]


def judge_items(cp: CompiledProgram, cg: CompiledGroup, items: pl.DataFrame) -> pl.DataFrame:
    """Per item: conditions, ``ok``, ``dup`` (a repeat of a counted value), ``counted``, ``share``."""
    judged = items.with_columns(condition_results(cg.conditions, set(items.columns)))
    errors = _fails(cg.group.excluding)
    ok = ~pl.any_horizontal(*(pl.col(c) for c in errors)) if errors else pl.lit(True)
    judged = judged.with_columns(ok.alias(OK))
    key = cg.distinct_key
    if key is not None and key in judged.columns:
        judged = judged.with_columns(_repeats(judged, key).alias(DUP))
    else:
        judged = judged.with_columns(pl.lit(False).alias(DUP))
    judged = judged.with_columns((pl.col(OK) & ~pl.col(DUP)).alias(COUNTED))
    share = None
    if cp.award.items == cg.group.list_name:
        share = cp.award.item_share()
        base = cp.award.item_base
        if base is not None and base not in judged.columns:
            share = None
    return judged.with_columns(
        (share if share is not None else pl.lit(None, dtype=pl.Int64)).alias(SHARE)
    )


def _repeats(judged: pl.DataFrame, key: str) -> pl.Series:
    """Items whose ``key`` an earlier passing item of the same application already has (the
    first in ``seq`` order counts). Found among the few (application, key) pairs that repeat, so
    that a batch of millions of distinct items costs one hash pass."""
    pair = pl.struct(REC, key)
    # Cheap, first: the values whose 8-byte hash is seen twice, found by sorting the hashes (a
    # third of the cost of is_duplicated on the text); a shared hash is only a candidate.
    hashes = judged.select(pl.when(pl.col(key).is_not_null()).then(pl.col(key).hash(7)))
    ordered = hashes.to_series().sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    candidates = judged.with_row_index("_i").filter(hashes.to_series().is_in(repeated.implode()))
    candidates = candidates.filter(pl.col(OK) & pl.col(key).is_not_null() & pair.is_duplicated())
    out = pl.repeat(False, judged.height, dtype=pl.Boolean, eager=True).alias(DUP)
    if candidates.height:
        later = candidates.sort(SEQ).filter(~pair.is_first_distinct())["_i"]
        out = out.scatter(later, True)
    return out


def _group_stats(cp: CompiledProgram, cg: CompiledGroup, judged: pl.DataFrame) -> pl.DataFrame:
    name = cg.group.list_name
    aggs = [
        pl.len().alias(f"n:{name}"),
        pl.col(COUNTED).sum().cast(pl.Int64).alias(f"counted:{name}"),
        (~pl.col(OK)).any().alias(f"any_fail:{name}"),
    ]
    key = cp.award.item_base
    if cp.award.items == name and key is not None and key in judged.columns:
        aggs.append(pl.col(key).filter(pl.col(COUNTED)).sum().cast(pl.Int64).alias(f"base:{name}"))
    return judged.group_by(REC).agg(aggs)


def decide_batch(
    cp: CompiledProgram, apps: pl.DataFrame, items: dict[str, pl.DataFrame]
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Evaluate a program on a batch. ``apps`` has ``rec`` and fact columns; ``items`` maps a
    list name to its items (``rec``, ``seq``, facts). Lists absent from ``items`` are unknown."""
    judged_items = {
        cg.group.list_name: judge_items(cp, cg, items[cg.group.list_name])
        for cg in cp.groups
        if cg.group.list_name in items
    }
    out = apps.with_columns(condition_results(cp.conditions, set(apps.columns)))
    eligible: list[pl.Expr] = [~pl.col(c) for c in _fails(cp.program.required)]
    for cg in cp.groups:
        name = cg.group.list_name
        known = known_col(name)
        if known not in out.columns:
            out = out.with_columns(pl.lit(name in judged_items).alias(known))
        if name in judged_items:
            stats = _group_stats(cp, cg, judged_items[name])
            out = out.join(stats, on=REC, how="left")
        else:
            out = out.with_columns(
                pl.lit(None, dtype=pl.UInt32).alias(f"n:{name}"),
                pl.lit(None, dtype=pl.Int64).alias(f"counted:{name}"),
                pl.lit(None, dtype=pl.Boolean).alias(f"any_fail:{name}"),
            )
        out = out.with_columns(
            pl.col(f"counted:{name}").fill_null(0),
            pl.col(f"any_fail:{name}").fill_null(False),
        )
        if cg.group.rejects_application:
            eligible.append(~pl.col(known) | ~pl.col(f"any_fail:{name}"))
        if cg.group.at_least_one is not None:
            eligible.append(~pl.col(known) | (pl.col(f"counted:{name}") > 0))
    out = out.with_columns(
        (pl.all_horizontal(*eligible) if eligible else pl.lit(True)).alias(ELIGIBLE)
    )
    out = out.with_columns(_entitled(cp, out).alias(ENTITLED))
    duration = cp.program.plan.disbursement
    if duration is not None and duration.duration_field.replace(".", "__") in out.columns:
        tranches = cp.award.tranches(pl.col(ENTITLED))
        out = out.with_columns(e.alias(tranche_col(stage)) for stage, e in tranches.items())
    return out, judged_items


def _entitled(cp: CompiledProgram, apps: pl.DataFrame) -> pl.Expr:
    """The award in fen when eligible, 0 when not, null when it cannot be computed here."""
    award = cp.award
    nothing = pl.lit(0, dtype=pl.Int64)
    if any(need not in apps.columns for need in award.needs):
        return pl.when(pl.col(ELIGIBLE)).then(None).otherwise(nothing).cast(pl.Int64)
    known = pl.lit(True)
    counted_n = counted_base = None
    name = award.items
    if name is not None:
        counted_n = pl.col(f"counted:{name}")
        known = pl.col(known_col(name))
        if award.item_base is not None:
            base = f"base:{name}"
            if base in apps.columns:
                counted_base = pl.col(base).fill_null(0)
            else:  # the items have no base amount column: the rate cannot be applied
                counted_base, known = pl.lit(None, dtype=pl.Int64), pl.lit(False)
    amount = award.amount(counted_n, counted_base)
    return (
        pl.when(~pl.col(ELIGIBLE))
        .then(nothing)
        .when(known)
        .then(amount)
        .otherwise(None)
        .cast(pl.Int64)
    )

"""Quotas (名额): who a program's quota counts in a round, and who is beyond it.

One implementation for the two places that ask: allocating a round (``service.db.rounds``, a
few applications) and the batch audit of past awards (``service.audit.checks``, up to the
awards of a million rows at once). Pure: no database, no HTTP; each caller renders the result
(allocation's 409 and warning, the audit's findings).

The quota (``QuotaSpec``, from the program's rule file) is counted per program and round, and
for a per-district quota (各区1家) per district too:

* hard (不超过N) and per-district: the units placed after the first N are beyond the limit;
* soft (N家左右): the same places, but the caller only warns.

The ordering, one for both callers: **when the unit's application was received**
(``submitted_at``), **then when it was awarded** (``awarded_on``, the date of its first award in
the round), **then a stable tie-break** (the lower application id; in the audit, the file and
row of the unit's first award). Earlier first; a unit with no time for a key comes after those
with one. First come is the only order the service may use without choosing winners (the
reviewers choose, 择优遴选), and the audit re-checking a round must name the units allocation
would have named: so both order by receipt. Allocation always knows ``submitted_at`` and has no
award date yet; past-award files often carry only the award date, and then it decides.

A unit with no district is not counted under a per-district quota: its district is unknown,
so no district's count can include it (such an application already fails ``district-given``
of 第十二条（二）, and the audit reports it as ineligible).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from service.rules.model import QuotaSpec

PROGRAM = "program_id"
ROUND = "round"
DISTRICT = "district"
PLACE = "place"  # 1-based, among the units the quota counts together
LIMIT = "limit"
RECEIVED = "submitted_at"
AWARDED_ON = "awarded_on"
AREA = "_area"  # the district for a per-district quota, else null (one group)


def places(
    units: pl.DataFrame, quotas: Mapping[str, QuotaSpec], tie: Sequence[str]
) -> pl.DataFrame:
    """Every unit a quota counts, with its ``place`` and the quota's ``limit``; a unit is beyond
    the limit when ``place > limit``.

    ``units``: one row per unit with ``program_id``, ``round``, ``district``, the ``tie``
    columns, and ``submitted_at`` or ``awarded_on`` or both (any sortable type, null when
    unknown); other columns are carried along. Units of programs without a quota in
    ``quotas`` are left out. The rows come back grouped (program, round, district) and in order
    within each group. All programs are placed at once: one sort by the ordering, then a stable
    sort by the group keys keeps that order within each group.
    """
    by_district = [p for p, q in quotas.items() if q.kind == "per_district"]
    counted = units.filter(
        pl.col(PROGRAM).is_in(list(quotas))
        & (pl.col(DISTRICT).is_not_null() | ~pl.col(PROGRAM).is_in(by_district))
    )
    if counted.height == 0:
        return counted.with_columns(
            pl.lit(None, pl.String).alias(AREA),
            pl.lit(None, pl.Int64).alias(PLACE),
            pl.lit(None, pl.Int64).alias(LIMIT),
        ).clear()
    order = [c for c in (RECEIVED, AWARDED_ON) if c in counted.columns]
    area = pl.when(pl.col(PROGRAM).is_in(by_district)).then(pl.col(DISTRICT))
    keys = [PROGRAM, ROUND, AREA]
    ranked = (
        counted.sort([*order, *tie], nulls_last=True)
        .with_columns(area.alias(AREA))
        .sort(keys, maintain_order=True, nulls_last=True)
    )
    # A group starts where any key changes; a unit's place is its distance from that start.
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    start = pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift()) for k in keys)
    first = pl.when(start.fill_null(True)).then(index).forward_fill()
    limit = pl.col(PROGRAM).replace_strict(
        {p: q.limit for p, q in quotas.items()}, return_dtype=pl.Int64
    )
    return ranked.with_columns((index - first + 1).alias(PLACE), limit.alias(LIMIT))


# -- one program's round (allocation) ------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """An application a round's quota counts: its id (the tie-break), when it was received
    and its district."""

    id: int
    submitted_at: datetime
    district: str | None = None


@dataclass(frozen=True)
class QuotaBreach:
    """A hard or per-district quota that the units exceed."""

    kind: str  # hard | per_district
    limit: int
    count: int
    units: list[int]  # every unit the quota counts, in the ordering
    over: list[int]  # those beyond the limit, in that order
    district: str | None = None


@dataclass(frozen=True)
class QuotaWarning:
    kind: str  # soft
    limit: int
    count: int


@dataclass
class QuotaCheck:
    breaches: list[QuotaBreach] = field(default_factory=list)
    warnings: list[QuotaWarning] = field(default_factory=list)


def check(quota: QuotaSpec | None, units: list[Unit]) -> QuotaCheck:
    """One round of one program: the breaches of a hard or per-district quota (districts in
    name order), or the soft quota's warning."""
    result = QuotaCheck()
    if quota is None or not units:
        return result
    frame = pl.DataFrame(
        {
            PROGRAM: ["p"] * len(units),
            ROUND: ["r"] * len(units),
            DISTRICT: [u.district for u in units],
            RECEIVED: [u.submitted_at for u in units],
            "id": [u.id for u in units],
        },
        schema_overrides={DISTRICT: pl.String, "id": pl.Int64},
    )
    placed = places(frame, {"p": quota}, tie=["id"])
    groups = placed.group_by(AREA, maintain_order=True).agg(pl.col("id"), pl.col(PLACE))
    for district, ids, place in sorted(groups.iter_rows(), key=lambda g: g[0] or ""):
        if len(ids) <= quota.limit:
            continue
        if quota.kind == "soft":
            result.warnings.append(QuotaWarning("soft", quota.limit, len(ids)))
            continue
        over = [i for i, p in zip(ids, place, strict=True) if p > quota.limit]
        result.breaches.append(QuotaBreach(quota.kind, quota.limit, len(ids), ids, over, district))
    return result


def counted(quota: QuotaSpec | None, count: int) -> QuotaBreach | QuotaWarning | None:
    """A round's units known by their number only (a published table's row): a hard quota's
    breach or a soft one's warning. A per-district quota needs the districts: not decided."""
    if quota is None or count <= quota.limit or quota.kind == "per_district":
        return None
    if quota.kind == "soft":
        return QuotaWarning("soft", quota.limit, count)
    return QuotaBreach(quota.kind, quota.limit, count, [], [])

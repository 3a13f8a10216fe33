"""Re-evaluate a batch of past awards (all rows of the awards in it) program by program.

Records (one per award, key ``rec``) and their items arrive as typed frames; each program's
conditions and award formula run on its rows at once (service.engine.polars_decide). Out come
the findings about single awards, the item keys for the duplicate checks across the file, and
one compact row per award for the checks across awards (pools, quotas, once per applicant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from service.audit import findings as F
from service.audit.award_findings import (
    AWARDED,
    amount_findings,
    condition_findings,
    group_findings,
    item_findings,
    tranche_findings,
)
from service.audit.columns import PAID
from service.audit.context import AuditContext
from service.engine.polars_decide import (
    DUP,
    ENTITLED,
    REC,
    SEQ,
    SHARE,
    CompiledProgram,
    decide_batch,
    known_col,
)
from service.engine.polars_facts import app_refs, item_refs

KEY = "key"
ITEM = "item"
LIST = "list"
RECORD_META = ["src", "row", REC, "program_id", "award_id", "applicant_uscc", "applicant_name"]
# A unit's area for a per-district quota (各区1家): the value of the program's district_field.
AREA = "district"
UNIT_COLUMNS: dict[str, pl.DataType] = {  # what the checks across awards need of an award
    "src": pl.String(),
    "row": pl.Int64(),
    "program_id": pl.String(),
    "award_id": pl.String(),
    "applicant_uscc": pl.String(),
    "applicant_name": pl.String(),
    "round": pl.String(),
    AREA: pl.String(),
    AWARDED: pl.Int64(),
    "awarded_on": pl.Int64(),
    "submitted_at": pl.Int64(),  # yyyymmddhhmmss: when the application was received (quotas)
    ENTITLED: pl.Int64(),
    "cap": pl.Int64(),
}
DUP_COLUMNS: dict[str, pl.DataType] = {
    "src": pl.String(),
    "row": pl.Int64(),
    REC: pl.Int64(),  # the award's place in the batch: its row in ``Evaluated.owners``
    KEY: pl.String(),
    SEQ: pl.Int64(),  # the item's label (``patents[2] ZL…``) is made for findings only
    SHARE: pl.Int64(),
}
# Who claimed an item key: its award's row in the batch's owners, looked up for the few keys
# that repeat, at the end (an award's strings are not copied to each of its items).
OWNER_COLUMNS: dict[str, pl.DataType] = {
    "program_id": pl.String(),
    "award_id": pl.String(),
    "applicant_uscc": pl.String(),
    "applicant_name": pl.String(),
}


@dataclass
class Evaluated:
    findings: list[pl.DataFrame]
    units: pl.DataFrame  # UNIT_COLUMNS, one row per award
    keys: pl.DataFrame  # DUP_COLUMNS, one row per item with a distinct_by value
    # OWNER_COLUMNS of every award of the batch, by its place (``rec`` of the keys); only when
    # there are keys.
    owners: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=OWNER_COLUMNS))


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(
        (pl.col(n) if n in frame.columns else pl.lit(None)).cast(t).alias(n)
        for n, t in schema.items()
    )


def merge_records(records: pl.DataFrame) -> pl.DataFrame:
    """Rows of one award spread over several lines (one per item): one row, first values."""
    if records.height == 0 or not _repeats(records[REC]):
        return records
    others = [c for c in records.columns if c not in (REC, "row", "src")]
    return records.group_by(REC, maintain_order=True).agg(
        pl.col("src").first(),
        pl.col("row").min(),
        *(pl.col(c).drop_nulls().first() for c in others),
    )


def _repeats(keys: pl.Series) -> bool:
    """Whether a key is there twice. Files in award order have them sorted: then a repeat is
    next to itself (one comparison a row, not a hash table)."""
    if keys.is_sorted():
        return bool((keys == keys.shift(1)).any())
    return bool(keys.is_duplicated().any())


def evaluate(ctx: AuditContext, records: pl.DataFrame, items: pl.DataFrame) -> Evaluated:
    """A batch of whole awards (and their items), program by program."""
    records = merge_records(records)
    out = Evaluated([], pl.DataFrame(schema=UNIT_COLUMNS), pl.DataFrame(schema=DUP_COLUMNS))
    if records.height == 0:
        if items.height:
            out.findings.append(_orphans(items))
        return out
    # From here on an award is keyed by its place in the batch: the joins, groups and sorts on
    # it are on integers, not text. Its text comes back on what leaves (units, keys).
    texts = records[REC]
    records = records.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(REC))
    item_at: dict[str, pl.Series] = {}
    if items.height:
        # Each item gets its award's place and program (one join on the key alone).
        awards = pl.DataFrame([texts, records[REC].alias("_award"), records["program_id"]])
        owner = items.select(REC).join(awards, on=REC, how="left", maintain_order="left")
        items = items.drop([c for c in (REC, "program_id") if c in items.columns])
        items = items.with_columns(owner["_award"].alias(REC))
        if owner["_award"].null_count():
            lost = owner["_award"].is_null()
            orphans = items.filter(lost).with_columns(owner.filter(lost)[REC])  # its text
            out.findings.append(_orphans(orphans))
        item_at = _positions(owner["program_id"])
    missing = records.filter(pl.col("program_id").is_null())
    if missing.height:
        out.findings.append(_missing(missing, "program_id"))
    unit_parts, key_parts = [], []
    uscc = records.get_column("applicant_uscc", default=None)
    listed = ctx.listed(uscc) if uscc is not None else []
    for program_id, at in _positions(records["program_id"]).items():
        cp = ctx.compiled(program_id)
        if cp is None:
            rows = records[at]
            out.findings.append(unknown(ctx, program_id, rows))
            unit_parts.append(_conform(rows, UNIT_COLUMNS))
            continue
        # Only the columns this program reads are taken (a file has the facts of every program).
        row_columns, item_columns = _reads(cp)
        rows = records.select(c for c in records.columns if c in row_columns)[at]
        mine = items.select(c for c in items.columns if c in item_columns)
        mine = mine[item_at[program_id]] if program_id in item_at else mine.clear()
        result = _program(ctx, cp, rows, mine, listed)
        out.findings += result.findings
        unit_parts.append(result.units)
        key_parts.append(result.keys)
    if unit_parts:
        out.units = pl.concat(unit_parts, how="vertical_relaxed")
    if key_parts:
        out.keys = pl.concat(key_parts, how="vertical_relaxed")
    if out.keys.height:
        out.owners = _conform(records, OWNER_COLUMNS)
    return out


def _positions(values: pl.Series) -> dict[str, pl.Series]:
    """The row positions of each value (blank ones left out)."""
    grouped = values.to_frame("v").with_row_index("at").group_by("v").agg("at").drop_nulls("v")
    return {str(v): grouped["at"][i] for i, v in enumerate(grouped["v"].to_list())}


def _reads(cp: CompiledProgram) -> tuple[set[str], set[str]]:
    """The columns of records and of items that a program reads (its facts, and what every
    award's findings and the checks across awards need)."""
    rows = {*RECORD_META, AWARDED, "awarded_on", "recognised_on", "round", *UNIT_COLUMNS}
    if cp.program.disbursement is not None:
        rows |= set(PAID)
    rows |= {r.key for r in app_refs(cp.program)}
    rows |= {known_col(g.list_name) for g in cp.program.item_groups}
    area = _area_key(cp)
    if area is not None:
        rows.add(area)
    items = {REC, SEQ, "row", "src", LIST}
    items |= {r.key for refs in item_refs(cp.program).values() for r in refs}
    items |= {
        r.aggregate.field.replace(".", "__")
        for r in cp.program.facts
        if r.aggregate is not None and r.aggregate.field is not None
    }
    return rows, items


def _orphans(items: pl.DataFrame) -> pl.DataFrame:
    return F.build(
        items,
        "orphan_item",
        message_zh=pl.concat_str(
            pl.lit("明细行的奖补编号"), pl.col(REC), pl.lit("在奖补记录中不存在")
        ),
        message_en=pl.concat_str(pl.lit("No award record has the id "), pl.col(REC)),
    )


def _missing(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    return F.build(
        rows,
        "missing_value",
        message_zh=pl.lit(f"缺少{column}，无法审核"),
        message_en=pl.lit(f"No {column}: the row cannot be checked"),
    )


def unknown(
    ctx: AuditContext, program_id: str, rows: pl.DataFrame, stake: str = AWARDED
) -> pl.DataFrame:
    """Rows whose program cell names no program, or more than one: never a guess; the
    message lists the programs matched or, for none, the closest names."""
    zh, en = unknown_message(ctx, program_id)
    return F.build(
        rows, "unknown_program", message_zh=pl.lit(zh), message_en=pl.lit(en),
        amount_at_stake=pl.col(stake),
    )  # fmt: skip


def unknown_message(ctx: AuditContext, program_id: str) -> tuple[str, str]:
    family = ctx.book.families.get(program_id)
    if family is not None:
        listed = ctx.names.described(tuple(family.members))
        return (
            f"“{family.title_zh}”包含多个项目（{family.article}），逐笔记录须写明具体项目：{listed}",
            f"'{family.title_zh}' covers several programs ({family.article}); an award names "
            f"one of them: {listed}",
        )
    found = ctx.match(program_id)
    listed = ctx.names.described(found.candidates)
    if found.ambiguous:
        return (
            f"项目名称“{program_id}”对应多个项目，无法确定：{listed}",
            f"The program name '{program_id}' matches several programs: {listed}",
        )
    return (
        f"规则文件中没有项目“{program_id}”；最接近的项目：{listed}",
        f"The rule files have no program '{program_id}'; the closest: {listed}",
    )


def _drop_blank(frame: pl.DataFrame, keep: set[str]) -> pl.DataFrame:
    """A column with no value for this program is a fact the file does not have."""
    blank = [c for c in frame.columns if c not in keep and frame[c].null_count() == frame.height]
    return frame.drop(blank)


def _with_context(cp: CompiledProgram, rows: pl.DataFrame, listed: list[str]) -> pl.DataFrame:
    """``listed``: the batch's applicants on the 第二十六条 list (looked up once a batch)."""
    keys = {r.key for r in cp.program.facts}
    if "context__disqualified" in keys:
        rows = rows.with_columns(
            pl.when(pl.col("applicant_uscc").is_null())
            .then(None)
            .otherwise(pl.col("applicant_uscc").is_in(listed))
            .alias("context__disqualified")
        )
    return rows


def _counts(
    cp: CompiledProgram, rows: pl.DataFrame, items: dict[str, pl.DataFrame]
) -> pl.DataFrame:
    """``count(list)`` facts, from the items when the file has them."""
    for ref in cp.program.facts:
        agg = ref.aggregate
        if agg is None or agg.list_name not in items:
            continue
        lst = items[agg.list_name]
        field = None if agg.field is None else agg.field.replace(".", "__")
        if field is not None and field not in lst.columns:
            continue
        match = pl.lit(True) if field is None else (pl.col(field) == agg.value).fill_null(False)
        counted = lst.group_by(REC).agg(match.sum().cast(pl.Int64).alias("_n"))
        rows = rows.join(counted, on=REC, how="left").with_columns(
            pl.coalesce(
                pl.col(ref.key) if ref.key in rows.columns else pl.lit(None, dtype=pl.Int64),
                pl.when(pl.col(known_col(agg.list_name))).then(pl.col("_n").fill_null(0)),
            ).alias(ref.key)
        )
        rows = rows.drop("_n")
    return rows


def _split_items(cp: CompiledProgram, items: pl.DataFrame) -> dict[str, pl.DataFrame]:
    main = cp.main_group
    out: dict[str, pl.DataFrame] = {}
    if items.height == 0:
        return out
    if LIST not in items.columns:  # detail rows only: all are items of the main list
        if main is not None:
            out[main.group.list_name] = _ordinal(_by_award(items))
        return out
    # Items of an application (its JSON body) have their list and order; detail rows have none.
    lst = items[LIST].fill_null(main.group.list_name if main else "")
    seq = items[SEQ].fill_null(0) if SEQ in items.columns else pl.lit(0, dtype=pl.Int64)
    items = items.with_columns(lst.alias(LIST), seq.alias(SEQ))
    for cg in cp.groups:
        part = items.filter(pl.col(LIST) == cg.group.list_name)
        if part.height:
            out[cg.group.list_name] = _ordinal(part.sort([REC, "row", SEQ]))
    return out


def _by_award(items: pl.DataFrame) -> pl.DataFrame:
    """Detail rows by award, then file order. Files in award order have them so already: a
    pass over the integers tells, instead of a sort that moves every column."""
    ordered = (pl.col(REC).diff() > 0) | ((pl.col(REC).diff() == 0) & (pl.col("row").diff() > 0))
    if items.select(ordered.fill_null(False).slice(1).all()).item():
        return items
    return items.sort([REC, "row"])


def _ordinal(items: pl.DataFrame) -> pl.DataFrame:
    """``seq``: each item's place in its award (items sorted by award, then file order). Done
    on the sorted runs: a window over a million awards costs twenty times more."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    start = (pl.col(REC) != pl.col(REC).shift()).fill_null(True)
    first = pl.when(start).then(index).forward_fill()
    return items.with_columns((index - first).alias(SEQ))


@dataclass
class _Result:
    findings: list[pl.DataFrame]
    units: pl.DataFrame
    keys: pl.DataFrame


def _program(
    ctx: AuditContext,
    cp: CompiledProgram,
    rows: pl.DataFrame,
    items: pl.DataFrame,
    listed: list[str],
) -> _Result:
    meta = {*RECORD_META, AWARDED, "awarded_on", "recognised_on", "round", *PAID}
    meta |= {c for c in rows.columns if c.startswith("items_known:")}
    rows = _with_context(cp, _drop_blank(rows, meta), listed)
    lists = _split_items(cp, items)
    lists = {
        name: _drop_blank(frame, {REC, SEQ, "row", "src", LIST}) for name, frame in lists.items()
    }
    item_keys = item_refs(cp.program)
    for cg in cp.groups:
        name = cg.group.list_name
        # Items are known when the input has columns for them (an award with no rows then has
        # none); an award with its application knows its own (items_known set from the body).
        has = any(r.key in ctx.item_columns for r in item_keys[name])
        known = known_col(name)
        if known not in rows.columns:
            rows = rows.with_columns(pl.lit(has).alias(known))
        else:
            rows = rows.with_columns(pl.col(known).fill_null(has))
    rows = _counts(cp, rows, lists)
    decided, judged = decide_batch(cp, rows, lists)
    cap = cp.award.cap_fen()
    decided = decided.with_columns(
        pl.lit(cap, dtype=pl.Int64).alias("cap"),
        (pl.col(AWARDED) > pl.col(ENTITLED)).fill_null(False).alias("overpaid"),
    )
    found: list[pl.DataFrame] = []
    found += condition_findings(decided, cp.conditions)
    for cg in cp.groups:
        if cg.group.list_name in judged:
            found += item_findings(cp, cg, decided, judged[cg.group.list_name])
        found += group_findings(cg, decided)
    found += amount_findings(ctx, cp, decided)
    found += tranche_findings(cp, decided)
    keys = _conform(_keys(cp, judged), DUP_COLUMNS)
    area = _area_key(cp)
    if area is not None and area != AREA and area in decided.columns:
        decided = decided.with_columns(pl.col(area).alias(AREA))
    return _Result(found, _conform(decided, UNIT_COLUMNS), keys)


def _area_key(cp: CompiledProgram) -> str | None:
    """The column holding a unit's area, for a program with a per-district quota."""
    quota = cp.program.quota
    if quota is None or quota.kind != "per_district" or quota.district_field is None:
        return None
    return quota.district_field.replace(".", "__")


def _keys(cp: CompiledProgram, judged: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Every item with a ``distinct_by`` value, for the duplicate checks across awards."""
    cg = cp.main_group
    if cg is None or cg.distinct_key is None or cg.group.list_name not in judged:
        return pl.DataFrame(schema=DUP_COLUMNS)
    items = judged[cg.group.list_name]
    key = cg.distinct_key
    if key not in items.columns:
        return pl.DataFrame(schema=DUP_COLUMNS)
    items = items.filter(pl.col(key).is_not_null() & ~pl.col(DUP))
    return items.select("src", "row", REC, pl.col(key).alias(KEY), SEQ, SHARE)

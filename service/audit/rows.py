"""Raw rows to typed award records and items, whatever the layout of the run.

A chunk of text rows is parsed (bad cells become findings with their row), keyed by award
(``rec``: the award id, or the row itself when it has none) and split into award records and
item rows; awards that carry their application get its facts and items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from service.audit import findings as F
from service.audit.applications import expand
from service.audit.columns import Column, Vocabulary, recognise
from service.audit.context import AuditContext
from service.audit.evaluate import AWARDED
from service.audit.names import TOTAL
from service.audit.parse import parse
from service.engine.polars_decide import REC
from service.rules.loader import RuleBook

RECORD_FIELDS = ("program_id", AWARDED, "applicant_uscc", "application", "awarded_on")
IDENTITY = ("award_id", "applicant_uscc", "applicant_name")


class Headers:
    """Recognised columns of one file; unknown ones are reported once, on the header row."""

    def __init__(self, book: RuleBook, src: str, vocabulary: Vocabulary | None = None) -> None:
        self.book, self.src = book, src
        self.vocabulary = vocabulary or Vocabulary.of(book)
        self.columns: dict[str, Column | None] = {}
        self.found: list[pl.DataFrame] = []
        self.keys: set[str] = set()

    def known(self, headers: list[str]) -> list[Column]:
        for header in headers:
            if header == "row" or header in self.columns:
                continue
            column = recognise(header, self.book, self.vocabulary)
            if column is not None and column.key in self.keys:
                column = None  # a second column for the same thing: the first one is read
            self.columns[header] = column
            if column is None:
                self.found.append(_unknown_column(self.src, header))
            else:
                self.keys.add(column.key)
        return [c for h in headers if (c := self.columns.get(h)) is not None]

    def header_of(self, key: str) -> str | None:
        """The header of the column read as ``key`` (e.g. ``award_id``), if the file has one."""
        return next((h for h, c in self.columns.items() if c is not None and c.key == key), None)


def _unknown_column(src: str, header: str) -> pl.DataFrame:
    if header == "__unreadable__":
        return F.empty()
    row = {
        "source": src,
        "row": 1,
        "item": header,
        "message_zh": f"无法识别的列“{header}”，已忽略",
        "message_en": f"Unknown column '{header}', ignored",
    }
    return F.build(pl.DataFrame([row]), "unknown_column")


@dataclass
class Rows:
    """One chunk of a file, typed: what was wrong with its cells, and its awards and items."""

    found: list[pl.DataFrame]
    records: pl.DataFrame | None = None
    items: list[pl.DataFrame] = field(default_factory=list)
    typed: pl.DataFrame | None = None  # the rows of a program-summary file
    totals: pl.DataFrame | None = None  # 合计 rows: checked against the others, not audited


def read_rows(
    ctx: AuditContext,
    src: str,
    raw: pl.DataFrame,
    columns: list[Column],
    details: bool = False,
    summary: bool = False,
) -> Rows:
    """Parse one chunk of ``src`` and split it (changes no state: chunks are read side by side).
    A detail file has items only; a program-summary file's rows are kept as they are."""
    parsed = parse(raw, columns, ctx.memo)
    typed = parsed.frame.with_columns(pl.lit(src).alias("src"))
    out = Rows([_cell_problems(src, typed, parsed.problems), _unreadable_rows(src, raw)])
    if "program_id" in typed.columns:
        typed = typed.with_columns(ctx.program_ids(typed["program_id"]))
        total = _total_rows(typed, columns)
        if total is not None:
            out.totals = typed.filter(total)
            typed = typed.filter(~total)
    notes = [c.key for c in columns if c.level == "note"]
    if summary:
        out.typed = typed
        return out
    by_row = pl.concat_str(pl.lit("#"), pl.col("src"), pl.lit(":"), pl.col("row").cast(pl.String))
    if "award_id" not in typed.columns:
        rec = by_row
    elif typed["award_id"].null_count() == 0:
        rec = pl.col("award_id")
    else:
        rec = pl.coalesce(pl.col("award_id"), by_row)
    typed = typed.with_columns(rec.alias(REC))
    item_keys = [c.key for c in columns if c.level == "item"]
    if item_keys:
        is_item = pl.any_horizontal(*(pl.col(k).is_not_null() for k in item_keys))
        out.items.append(typed.filter(is_item).select("src", "row", REC, *item_keys))
    if details:
        return out
    present = [c for c in RECORD_FIELDS if c in typed.columns]
    if not present:
        return out
    records = typed.filter(pl.any_horizontal(*(pl.col(c).is_not_null() for c in present)))
    # Who and which award are named in findings: a file without such a column has them blank.
    records = records.with_columns(
        pl.lit(None, dtype=pl.String).alias(c) for c in IDENTITY if c not in records.columns
    )
    records, json_items, problems = expand(ctx, records.drop(item_keys, *notes))
    out.found.append(problems)
    out.records = records
    if json_items is not None:
        out.items.append(json_items)
    return out


def _total_rows(typed: pl.DataFrame, columns: list[Column]) -> pl.Series | None:
    """合计 rows: the program cell, the 序号 or a note cell says 合计 (总计, 小计, Total)."""
    labels = ["program_id", "award_id", *(c.key for c in columns if c.level == "note")]
    found = [pl.col(c).str.contains(TOTAL) for c in labels if c in typed.columns]
    mask = typed.select(pl.any_horizontal(found).fill_null(False)).to_series()
    return mask if mask.any() else None


def _cell_problems(src: str, typed: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    if problems.height == 0:
        return F.empty()
    context = [
        c
        for c in ("program_id", "applicant_uscc", "applicant_name", "award_id")
        if c in typed.columns
    ]
    rows = problems.join(typed.select("row", *context), on="row", how="left")
    parts = []
    for (kind,), part in rows.group_by("problem"):
        parts.append(
            F.build(
                part,
                str(kind),
                source=src,
                item=pl.col("column"),
                message_zh=pl.concat_str(
                    pl.lit("“"),
                    pl.col("column"),
                    pl.lit("”列的值“"),
                    pl.col("value"),
                    pl.lit(f"”无法读取（{F.KINDS[str(kind)].zh}）"),
                ),
                message_en=pl.concat_str(
                    pl.lit("Column '"),
                    pl.col("column"),
                    pl.lit("': cannot read '"),
                    pl.col("value"),
                    pl.lit(f"' ({F.KINDS[str(kind)].en})"),
                ),
            )
        )
    return pl.concat(parts)


def _unreadable_rows(src: str, raw: pl.DataFrame) -> pl.DataFrame:
    if "__unreadable__" not in raw.columns:
        return F.empty()
    bad = raw.filter(pl.col("__unreadable__").is_not_null())
    return F.build(
        bad,
        "unreadable_row",
        source=src,
        message_zh=pl.lit("该行不是有效的 JSON 对象"),
        message_en=pl.lit("The line is not a JSON object"),
    )

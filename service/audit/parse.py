"""Text cells to typed columns, vectorised, exactly: the encodings of the batch backend.

Money becomes Int64 fen by splitting the digits (never through a float): ``1,500.00`` →
150000; in a 万元 column ``1.5`` → 1500000 (up to six decimals: one fen). Dates become
yyyymmdd (``2023-01-05``, ``2023/1/5``, ``2023年1月5日``, ``20230105``); timestamps
yyyymmddhhmmss in Asia/Shanghai (a spreadsheet's naive time is read as Shanghai time).
USCCs and patent numbers are checked with their check characters; patent numbers are put in
the canonical form the service compares (digits and check character). A cell that is filled
but unreadable becomes null here and a problem for the findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import polars as pl

from service.audit.columns import Column

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PATENT_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

TRUE = ("true", "t", "yes", "y", "1", "是", "有", "√", "✓", "已", "已完成")
FALSE = ("false", "f", "no", "n", "0", "否", "无", "×", "未", "未完成")
PROBLEM_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.Int64(),
    "column": pl.String(),
    "value": pl.String(),
    "problem": pl.String(),
}


def money_fen(cell: pl.Expr, wan: bool = False) -> pl.Expr:
    text = cell.str.replace_all(r"[,，¥￥\s]", "")
    places, scale, width = (6, 1_000_000, 11) if wan else (2, 100, 15)
    shape = rf"^[0-9]{{1,{width}}}(\.[0-9]{{0,{places}}})?$"
    whole = text.str.extract(r"^([0-9]+)", 1).cast(pl.Int64, strict=False)
    frac = text.str.extract(r"\.([0-9]*)$", 1).fill_null("").str.pad_end(places, "0")
    return pl.when(text.str.contains(shape)).then(whole * scale + frac.cast(pl.Int64))


def date_int(cell: pl.Expr) -> pl.Expr:
    text = cell.str.strip_chars().str.replace(r"[T ].*$", "")
    text = text.str.replace_all(r"[年月/.]", "-").str.replace(r"日$", "")
    compact = text.str.contains(r"^[0-9]{8}$")
    text = (
        pl.when(compact)
        .then(
            pl.concat_str(
                text.str.slice(0, 4), text.str.slice(4, 2), text.str.slice(6, 2), separator="-"
            )
        )
        .otherwise(text)
    )
    parts = text.str.extract_groups(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")
    iso = pl.concat_str(
        parts.struct.field("1"),
        parts.struct.field("2").str.zfill(2),
        parts.struct.field("3").str.zfill(2),
        separator="-",
    )
    day = iso.str.to_date("%Y-%m-%d", strict=False)
    return (
        day.dt.year().cast(pl.Int64) * 10000
        + day.dt.month().cast(pl.Int64) * 100
        + day.dt.day().cast(pl.Int64)
    )


def datetime_int(cell: pl.Expr) -> pl.Expr:
    text = cell.str.strip_chars().str.replace(" ", "T").str.replace(r"Z$", "+00:00")
    text = text.str.replace(r"\.[0-9]+", "")  # fractions of a second: truncated, as the engine does
    text = text.str.replace(r"^([0-9-]+T[0-9]{2}:[0-9]{2})([+-]|$)", "${1}:00${2}")
    aware = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False, time_unit="us")
    naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
    local = pl.coalesce(
        aware.dt.convert_time_zone("Asia/Shanghai"),
        naive.dt.replace_time_zone("Asia/Shanghai", non_existent="null", ambiguous="null"),
    )
    return (
        local.dt.year().cast(pl.Int64) * 10**10
        + local.dt.month().cast(pl.Int64) * 10**8
        + local.dt.day().cast(pl.Int64) * 10**6
        + local.dt.hour().cast(pl.Int64) * 10**4
        + local.dt.minute().cast(pl.Int64) * 100
        + local.dt.second().cast(pl.Int64)
    )


def flag(cell: pl.Expr) -> pl.Expr:
    mapping = {**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False)}
    return (
        cell.str.strip_chars()
        .str.to_lowercase()
        .replace_strict(mapping, default=None, return_dtype=pl.Boolean)
    )


def whole(cell: pl.Expr) -> pl.Expr:
    text = cell.str.strip_chars().str.replace(r"\.0+$", "")
    return pl.when(text.str.contains(r"^[0-9]{1,15}$")).then(text.cast(pl.Int64, strict=False))


def uscc(cell: pl.Expr) -> pl.Expr:
    """The USCC if its shape and check character are right (GB 32100-2015)."""
    text = cell.str.strip_chars().str.to_uppercase()
    values = {c: i for i, c in enumerate(_USCC_ALPHABET)}
    total = pl.sum_horizontal(
        text.str.slice(i, 1).replace_strict(values, default=0, return_dtype=pl.Int64) * w
        for i, w in enumerate(_USCC_WEIGHTS)
    )
    expected = (31 - total % 31) % 31
    check = text.str.slice(17, 1).replace_strict(values, default=-1, return_dtype=pl.Int64)
    shape = text.str.contains(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
    return pl.when(shape & (check == expected)).then(text)


def patent_number(cells: pl.Series) -> pl.Series:
    """Canonical patent number, check character verified. Staged (each step materialised once)
    and arithmetic on the digits: string slicing per digit costs ten times more."""
    t = pl.col("t")
    frame = cells.to_frame("t").with_columns(
        t.str.strip_chars()
        .str.to_uppercase()
        .str.replace(r"^(ZL|CN)", "")
        .str.replace(".", "", literal=True)
    )
    frame = frame.with_columns(
        t.str.contains(r"^(?:[0-9]{12}|[0-9]{8})[0-9X]$").alias("ok"),
        (t.str.len_bytes().cast(pl.Int64) - 1).alias("w"),
    ).with_columns(
        t.str.slice(0, pl.col("w")).cast(pl.Int64, strict=False).alias("n"),
        t.str.slice(pl.col("w"), 1).alias("c"),
    )

    def weighted(width: int) -> pl.Expr:
        n = pl.col("n")
        return pl.sum_horizontal(
            (n // 10 ** (width - 1 - i)) % 10 * w for i, w in enumerate(_PATENT_WEIGHTS[:width])
        )

    frame = frame.with_columns(
        (pl.when(pl.col("w") == 12).then(weighted(12)).otherwise(weighted(8)) % 11).alias("r")
    )
    expected = pl.when(pl.col("r") == 10).then(pl.lit("X")).otherwise(pl.col("r").cast(pl.String))
    return frame.select(pl.when(pl.col("ok") & (pl.col("c") == expected)).then(t)).to_series()


def text_value(
    cell: pl.Expr, choices: tuple[object, ...] | None, labels: Mapping[str, str]
) -> pl.Expr:
    """A text cell; a choice by its value or by a label of the form files (高校 -> university)."""
    text = cell.str.strip_chars()
    if choices is None:
        return pl.when(text != "").then(text)
    canonical = text.replace(dict(labels)).str.to_lowercase()
    return pl.when(canonical.is_in([str(c) for c in choices])).then(canonical)


def typed(column: Column) -> pl.Expr:
    """The expression that reads one raw (string) column as its kind."""
    cell = pl.col(column.header)
    kind, leaf = column.spec.kind, column.name.rsplit(".", 1)[-1]
    if kind == "money":
        return money_fen(cell, column.wan)
    if kind == "date":
        return date_int(cell)
    if kind == "datetime":
        return datetime_int(cell)
    if kind == "bool":
        return flag(cell)
    if kind == "uscc" or leaf == "uscc":
        return uscc(cell)
    if kind == "int":
        value = whole(cell)
        choices = column.spec.choices
        return value if choices is None else pl.when(value.is_in(list(choices))).then(value)
    if kind == "json":
        return pl.when(cell.str.strip_chars() != "").then(cell)
    return text_value(cell, column.spec.choices, column.choice_labels)


def problem_of(column: Column) -> str:
    kind, leaf = column.spec.kind, column.name.rsplit(".", 1)[-1]
    if kind == "money":
        return "unreadable_amount"
    if kind in ("date", "datetime"):
        return "unreadable_date"
    if kind == "uscc" or leaf == "uscc":
        return "invalid_uscc"
    if leaf == "patent_number":
        return "invalid_patent_number"
    return "unreadable_value"


@dataclass
class Parsed:
    frame: pl.DataFrame  # row + one typed column per recognised column (by key)
    problems: pl.DataFrame  # PROBLEM_SCHEMA: filled cells that could not be read


# The shapes most cells have, read by one cheap step each; every other cell takes the general
# expression (``typed``), which alone costs five to ten times more per cell.
_MONEY_SHAPE = r"^[0-9]{1,15}\.[0-9]{2}$"
_DATE_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_PATENT_SHAPE = r"^ZL[0-9]{12}\.[0-9X]$"  # as CNIPA prints a patent number (ZL202210123456.7)
FEW = 16  # distinct values mapped back by comparisons; more, by a hash lookup
MEMO_LIMIT = 200_000  # distinct values of a column remembered across chunks, at most
Memo = dict[str, tuple[pl.Series, pl.Series]]  # column: values read so far, and their readings


def _general(cells: pl.Series, column: Column) -> pl.Series:
    if column.name.rsplit(".", 1)[-1] == "patent_number":
        return patent_number(cells)
    return cells.to_frame(column.header).select(typed(column)).to_series()


_CHECK_CHARACTERS = pl.Series(list("0123456789X"))


@cache
def _patent_weights(half: int) -> pl.Series:
    """The weighted digit sum (mod 11) of every six-digit number, for the first (0) or the
    second (1) half of a 12-digit patent application number: two lookups instead of twelve
    digits taken apart."""
    weights = _PATENT_WEIGHTS[6 * half : 6 * half + 6]

    def three(w: tuple[int, ...]) -> pl.Series:  # the sums of every three-digit number
        return pl.Series(
            [sum(int(d) * x for d, x in zip(f"{n:03d}", w, strict=True)) for n in range(1000)]
        )

    n = pl.int_range(10**6, dtype=pl.Int64, eager=True)
    total = three(weights[:3]).gather(n // 1000) + three(weights[3:]).gather(n % 1000)
    return (total % 11).cast(pl.UInt8)


def _quick_patent(cells: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(canonical, read) for ``ZL`` + 12 digits + ``.`` + check character."""
    read = cells.str.contains(_PATENT_SHAPE).fill_null(False)
    digits = cells.str.slice(2, 12)
    frame = pl.DataFrame(
        [
            digits.alias("d"),
            read.alias("read"),
            digits.cast(pl.Int64, strict=False).alias("n"),
            cells.str.tail(1).alias("c"),
        ]
    )
    n = pl.when("read").then(pl.col("n"))  # twelve digits: both halves index the tables
    r = (
        _patent_weights(0).gather(frame.select(n // 10**6).to_series())
        + _patent_weights(1).gather(frame.select(n % 10**6).to_series())
    ) % 11
    ok = pl.col("c") == _CHECK_CHARACTERS.gather(r)  # "0"-"9", "X" for 10: compared as text
    return frame.select(pl.when(ok).then(pl.concat_str("d", "c"))).to_series(), read


def _quick(cells: pl.Series, column: Column) -> tuple[pl.Series, pl.Series] | None:
    """(values, read) for the common shape of money (``1500.00``), dates (``2023-04-10``) and
    patent numbers (``ZL202210123456.7``)."""
    kind = column.spec.kind
    if column.name.rsplit(".", 1)[-1] == "patent_number":
        return _quick_patent(cells)
    if kind == "money" and not column.wan:
        read = cells.str.contains(_MONEY_SHAPE).fill_null(False)
        values = cells.str.replace(".", "", literal=True).cast(pl.Int64, strict=False)
    elif kind == "date":
        day = cells.str.to_date("%Y-%m-%d", strict=False)
        read = (cells.str.contains(_DATE_SHAPE) & day.is_not_null()).fill_null(False)
        values = (
            day.dt.year().cast(pl.Int64) * 10000
            + day.dt.month().cast(pl.Int64) * 100
            + day.dt.day().cast(pl.Int64)
        )
    else:
        return None
    return values.zip_with(read, pl.Series([None], dtype=values.dtype)), read


def _read(cells: pl.Series, column: Column) -> pl.Series:
    """Cells (mostly filled) typed: the quick shape first, the general reading for the rest."""
    quick = _quick(cells, column)
    if quick is None:
        return _general(cells, column)
    values, read = quick
    rest = ~read & cells.is_not_null()
    if not rest.any():
        return values
    return values.scatter(rest.arg_true(), _general(cells.filter(rest), column))


def _by_distinct(cells: pl.Series, column: Column, memo: Memo | None = None) -> pl.Series:
    """Each distinct value read once and looked up; with a memo, once per run (applicants,
    dates and flags come back chunk after chunk: a chunk of known values costs one lookup)."""
    key = f"{column.key}\x00{column.header}"  # the header says 万元 or not
    known = memo.get(key) if memo is not None else None
    if known is None:
        known = (cells.clear(), _read(cells.clear(), column))
    values, parsed = known
    out = _lookup(cells, values, parsed)
    unmatched = out.is_null() & cells.is_not_null()  # new values (or known unreadable ones)
    if not unmatched.any():
        return out
    rest = cells.filter(unmatched)
    distinct = rest.unique().drop_nulls()
    new = distinct.filter(~distinct.is_in(values.implode()))
    if new.len() == 0:
        return out
    values, parsed = pl.concat([values, new]), pl.concat([parsed, _read(new, column)])
    if memo is not None and values.len() <= MEMO_LIMIT:
        # Text of its own: a view would keep each chunk's whole column alive.
        own = values.to_frame("v").select(pl.concat_str("v", pl.lit(""))).to_series()
        memo[key] = (own, parsed)
    return out.scatter(unmatched.arg_true(), _lookup(rest, values, parsed))


def _lookup(cells: pl.Series, values: pl.Series, parsed: pl.Series) -> pl.Series:
    """``cells`` read as ``parsed`` where they are one of ``values``, else null. A few values
    by comparisons (one cheap pass each), more by a hash lookup."""
    if values.len() > FEW:
        return cells.replace_strict(values, parsed, default=None, return_dtype=parsed.dtype)
    c = pl.col("c")
    out: pl.Expr = pl.lit(None, dtype=parsed.dtype)
    for value, typed_value in zip(values.to_list(), parsed.to_list(), strict=True):
        if typed_value is not None:
            out = pl.when(c == value).then(pl.lit(typed_value, dtype=parsed.dtype)).otherwise(out)
    return cells.to_frame("c").with_columns(out.alias("out"))["out"]  # a literal: every row


def _few_values(cells: pl.Series) -> bool:
    """Whether a sample of the column repeats its values enough to parse distinct ones only."""
    sample = cells.head(16384).drop_nulls().head(4096)  # blank cells are not values
    return sample.len() >= 256 and sample.n_unique() * 4 < sample.len()


def _costly(column: Column) -> bool:
    """Whether reading a cell costs more than looking its value up (plain text does not)."""
    return column.spec.kind not in ("json", "str") or column.spec.choices is not None


def _column(raw: pl.DataFrame, column: Column, memo: Memo | None = None) -> pl.Series:
    """One column typed. Blank cells are skipped (a detail file's columns are mostly blank: each
    belongs to one program); a column with few distinct values (dates, flags, kinds,
    applicants) is read once per distinct value."""
    cells = raw[column.header]
    blank = cells.null_count()
    if blank == cells.len():  # nothing to read (a column of another program's items)
        dtype = _read(cells.clear(), column).dtype
        return pl.repeat(None, cells.len(), dtype=dtype, eager=True).alias(column.key)
    leaf = column.name.rsplit(".", 1)[-1]
    if leaf != "patent_number" and (
        column.spec.kind == "uscc"
        or leaf == "uscc"  # organisations repeat: each code is checked once (17 slices)
        or (cells.len() >= 2048 and _costly(column) and _few_values(cells))
    ):
        # Looked up, blank cells and all: taking them out would cost what the lookup does.
        return _by_distinct(cells, column, memo).alias(column.key)
    if blank * 2 > cells.len() and cells.len() >= 2048:
        filled = cells.is_not_null()
        values = _column(pl.DataFrame([cells.filter(filled)]), column, memo)
        out = pl.repeat(None, cells.len(), dtype=values.dtype, eager=True)
        return out.scatter(filled.arg_true(), values).alias(column.key)
    return _read(cells, column).alias(column.key)


def _problems(raw: pl.DataFrame, column: Column, typed_cells: pl.Series) -> pl.DataFrame | None:
    """Filled cells that could not be read. Reading never fills a blank cell, so when the
    counts of nulls agree there are none (one count instead of a pass over the text)."""
    cells = raw[column.header]
    if typed_cells.null_count() == cells.null_count():
        return None
    bad = (cells.str.strip_chars().fill_null("") != "") & typed_cells.is_null()
    n = int(bad.sum())
    if n == 0:
        return None
    return pl.DataFrame(
        {
            "row": raw["row"].filter(bad),
            "column": [column.header] * n,
            "value": cells.filter(bad),
            "problem": [problem_of(column)] * n,
        },
        schema=PROBLEM_SCHEMA,
    )


def parse(raw: pl.DataFrame, columns: list[Column], memo: Memo | None = None) -> Parsed:
    """``raw``: a ``row`` column and string columns named by their headers."""
    typed_columns = [_column(raw, c, memo) for c in columns]
    frame = pl.DataFrame([raw["row"], *typed_columns])
    problems = [
        p
        for c, s in zip(columns, typed_columns, strict=True)
        if (p := _problems(raw, c, s)) is not None
    ]
    empty = pl.DataFrame(schema=PROBLEM_SCHEMA)
    return Parsed(frame, pl.concat(problems) if problems else empty)

"""findings.xlsx, written by XlsxWriter in its constant-memory mode (rows streamed to disk).

Two sheets: 发现 (the findings) and 项目 (per program). Each has its Chinese headers on the
first row and the English ones on the second, frozen above the rows, with filters; kinds and
severities in Chinese (their codes in a column of their own); row numbers as integers, amounts
as numbers with two decimals; columns as wide as their headers and a sample of their cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

EXCEL_ROWS = 1_048_576
HEADER_ROWS = 2
SEVERITY_ZH = {"error": "错误", "warning": "警告", "info": "提示"}


@dataclass(frozen=True)
class Column:
    key: str  # the frame's column
    zh: str
    en: str
    kind: str = "text"  # text | int | money (fen, written as yuan)
    width: float | None = None  # None: from the header and a sample of the cells


def _width(column: Column, sample: Sequence[Any]) -> float:
    if column.width is not None:
        return column.width

    def chars(text: str) -> float:  # a CJK character is about two Latin ones wide
        return sum(2.0 if ord(c) > 0x2E80 else 1.0 for c in text)

    longest = max((chars(str(v)) for v in sample if v is not None), default=0.0)
    longest = max(longest, chars(column.zh), chars(column.en))
    return min(60.0, max(6.0, longest + 2))


def write_sheet(
    book: Any,
    name: str,
    columns: Sequence[Column],
    frame: pl.DataFrame,
    formats: dict[str, Any],
    limit: int = EXCEL_ROWS - HEADER_ROWS,
) -> int:
    """One sheet, streamed row by row (constant memory: rows are written in order). Returns
    the rows written (at most Excel's row limit)."""
    sheet = book.add_worksheet(name)
    frame = frame.head(limit)
    sample = frame.head(500)
    for i, column in enumerate(columns):
        fmt = formats["money"] if column.kind == "money" else None
        sheet.set_column(i, i, _width(column, sample[column.key].to_list()), fmt)
    sheet.freeze_panes(HEADER_ROWS, 0)
    last = max(HEADER_ROWS, frame.height + HEADER_ROWS - 1)
    sheet.autofilter(HEADER_ROWS - 1, 0, last, len(columns) - 1)
    for i, column in enumerate(columns):  # row by row: constant memory writes rows in order
        sheet.write_string(0, i, column.zh, formats["header"])
    for i, column in enumerate(columns):
        sheet.write_string(1, i, column.en, formats["header_en"])
    writers: list[Callable[[int, int, Any], Any]] = []
    for column in columns:
        if column.kind == "money":

            def yuan(r: int, c: int, fen: int, f: Any = formats["money"]) -> Any:
                return sheet.write_number(r, c, fen / 100, f)

            writers.append(yuan)
        elif column.kind == "int":
            writers.append(sheet.write_number)
        else:
            writers.append(sheet.write_string)
    keys = [c.key for c in columns]
    row = HEADER_ROWS
    for chunk in frame.select(keys).iter_slices(20_000):
        for values in chunk.iter_rows():
            for col, (value, write) in enumerate(zip(values, writers, strict=True)):
                if value is not None and value != "":
                    write(row, col, value)
            row += 1
    return frame.height


def write_workbook(path: Path, sheets: Iterable[tuple[str, Sequence[Column], pl.DataFrame]]) -> int:
    """The workbook; returns the rows of the first sheet written."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    formats = {
        "header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1}),
        "header_en": book.add_format({"italic": True, "font_color": "#555555", "border": 1}),
        "money": book.add_format({"num_format": "#,##0.00"}),
    }
    written = []
    try:
        for name, columns, frame in sheets:
            written.append(write_sheet(book, name, columns, frame, formats))
    finally:
        book.close()
    return written[0] if written else 0

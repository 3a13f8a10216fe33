"""Audit files, read in chunks of rows as text: CSV, Excel (.xlsx) and JSON Lines.

Every reader yields frames of strings (a ``row`` column, then one column per header) so that
each cell is read by the same typed parser (service.audit.parse) whatever the format: Excel's
numbers come back as the text Excel shows (a float through ``repr``, the shortest form that
reads back the same), JSON numbers as written. Only what cannot be opened at all is an error
(``UnreadableInput``, exit 2); everything else becomes a finding with its row number.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

CHUNK_ROWS = 200_000


class UnreadableInput(Exception):
    """The file cannot be read as an audit file at all (exit code 2, HTTP 422)."""


@dataclass
class Table:
    """A file's header and its rows in chunks. ``done`` grows from 0 to 1 as rows are read."""

    name: str
    headers: list[str]
    chunks: Iterator[pl.DataFrame]
    size: int
    progress: dict[str, float] = field(default_factory=lambda: {"done": 0.0})
    sheets: list[str] = field(default_factory=list)  # a workbook's worksheets, in order


def _frame(headers: list[str], rows: list[list[str | None]], first_row: int) -> pl.DataFrame:
    data: dict[str, Any] = {"row": list(range(first_row, first_row + len(rows)))}
    for i, h in enumerate(headers):
        data[h] = [r[i] if i < len(r) else None for r in rows]
    schema = {"row": pl.Int64(), **dict.fromkeys(headers, pl.String())}
    return pl.DataFrame(data, schema=schema)


def _unique_headers(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        h = (h or "").strip() or "(blank)"
        if h in seen:
            seen[h] += 1
            h = f"{h}#{seen[h]}"
        else:
            seen[h] = 1
        out.append(h)
    return out


# -- CSV -------------------------------------------------------------------------------------
def _utf8(path: Path) -> Path:
    """Chinese spreadsheets are often saved as GB18030: such a file is re-encoded once."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    try:
        head.decode("utf-8")
        return path
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut at the sample's end
            return path
    out = Path(tempfile.mkstemp(suffix=".csv")[1])
    decoder = codecs.getincrementaldecoder("gb18030")()
    with path.open("rb") as src, out.open("w", encoding="utf-8") as dst:
        while block := src.read(1 << 20):
            dst.write(decoder.decode(block))
        dst.write(decoder.decode(b"", final=True))
    return out


def read_csv(path: Path, chunk_rows: int = CHUNK_ROWS) -> Table:
    source = _utf8(path)
    try:
        with source.open("r", encoding="utf-8-sig") as fh:
            first = fh.readline()
            sample = first + "".join(fh.readline() for _ in range(200))
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableInput(f"{path.name}: {exc}") from exc
    if not first.strip():
        raise UnreadableInput(f"{path.name}: the file is empty (no header row)")
    try:
        headers = pl.read_csv(
            first.encode(), infer_schema=False, n_rows=0, truncate_ragged_lines=True
        ).columns
    except pl.exceptions.PolarsError as exc:
        raise UnreadableInput(f"{path.name}: {exc}") from exc
    names = _unique_headers(headers)
    size = source.stat().st_size
    per_row = max(1.0, len(sample.encode()) / max(1, sample.count("\n")))
    table = Table(path.name, names, iter(()), size)

    block = max(1 << 16, int(chunk_rows * per_row))
    schema = dict.fromkeys(names, pl.String())

    def chunks() -> Iterator[pl.DataFrame]:
        # Blocks of bytes cut at a record's end, each parsed by polars: memory follows the block,
        # not the file (polars' own batched scan of a CSV held most of the file here).
        row, done = 2, 0  # the header is row 1, as a spreadsheet shows it
        with source.open("rb") as fh:
            fh.readline()
            carry, odd = b"", False  # a record begun in the last block; odd: its quotes
            # The first block is a quarter of the others: the first batch (and the pool that
            # waits for it) starts sooner.
            want = max(1 << 16, block // 4)
            while True:
                data = fh.read(want)
                want = block
                if data:
                    cut = _record_end(data, odd)
                    if cut == 0:  # one record longer than a block: read on
                        carry, odd = carry + data, odd ^ (data.count(b'"') % 2 == 1)
                        continue
                    text = b"".join((carry, memoryview(data)[:cut]))  # one copy
                    carry = data[cut:]
                    odd = b'"' in carry and carry.count(b'"') % 2 == 1
                else:
                    text, carry = carry, b""
                done += len(text)
                if text and not text.isspace():
                    frame = _block(path.name, text, names, schema)
                    frame = frame.with_row_index("row", offset=row)
                    row += frame.height
                    table.progress["done"] = min(0.99, done / max(1, size))
                    yield frame.with_columns(pl.col("row").cast(pl.Int64))
                if not data:
                    break
        table.progress["done"] = 1.0

    table.chunks = chunks()
    return table


def _block(
    name: str, text: bytes, names: list[str], schema: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """One block of whole records. Text that is not UTF-8 after all (a stray byte past the
    sample) is read with the bad bytes replaced, in that block only: checking is 10% cheaper."""
    for encoding in ("utf8", "utf8-lossy"):
        try:
            return pl.read_csv(
                text, has_header=False, new_columns=names, schema=schema,
                truncate_ragged_lines=True, encoding=encoding,  # type: ignore[arg-type]
            )  # fmt: skip
        except pl.exceptions.ComputeError as exc:
            if encoding == "utf8" and "utf-8" in str(exc).lower():
                continue
            raise UnreadableInput(f"{name}: {exc}") from exc
        except pl.exceptions.PolarsError as exc:
            raise UnreadableInput(f"{name}: {exc}") from exc
    raise AssertionError("unreachable")


def _record_end(buffer: bytes, odd: bool = False) -> int:
    """Where the last complete record of ``buffer`` ends: after a newline outside quotes (an
    even number of quote characters before it, doubled quotes included, with ``odd`` one more
    before the buffer). 0: none yet."""
    end = buffer.rfind(b"\n")
    if not odd and b'"' not in buffer:  # no quotes at all (one fast scan): the last newline
        return end + 1
    while end >= 0 and (buffer.count(b'"', 0, end) + odd) % 2:
        end = buffer.rfind(b"\n", 0, end)
    return end + 1


# -- Excel -----------------------------------------------------------------------------------
def cell_text(value: Any) -> str | None:
    """A cell as the text Excel shows for it (no float noise, dates in ISO form)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    return text if text.strip() else None


def read_xlsx(path: Path, chunk_rows: int = CHUNK_ROWS, sheet: int = 0) -> Table:
    import openpyxl  # imported here: only Excel input needs it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise UnreadableInput(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise UnreadableInput(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    if sheet >= len(book.worksheets):
        raise UnreadableInput(f"{path.name}: the workbook has no sheet {sheet + 1}")
    ws = book.worksheets[sheet]
    titles = [w.title for w in book.worksheets]
    # The first sheet is the file; another one is named by its sheet (awards.xlsx:明细).
    name = path.name if sheet == 0 else f"{path.name}:{ws.title}"
    rows = ws.iter_rows(values_only=True)
    header_row = 0
    headers: list[str] = []
    for values in rows:
        header_row += 1
        if any(cell_text(v) for v in values):
            headers = [cell_text(v) or "" for v in values]
            break
    if not headers:
        book.close()
        raise UnreadableInput(f"{name}: the sheet has no header row")
    while headers and not headers[-1]:
        headers.pop()
    names = _unique_headers(headers)
    total = max(1, (ws.max_row or 1) - header_row)
    table = Table(name, names, iter(()), path.stat().st_size, sheets=titles)

    def chunks() -> Iterator[pl.DataFrame]:
        batch: list[list[str | None]] = []
        first = header_row + 1
        done = 0
        for values in rows:
            batch.append([cell_text(v) for v in values[: len(names)]])
            if len(batch) >= chunk_rows:
                done += len(batch)
                table.progress["done"] = min(0.99, done / total)
                yield _frame(names, batch, first)
                first += len(batch)
                batch = []
        if batch:
            yield _frame(names, batch, first)
        book.close()
        table.progress["done"] = 1.0

    table.chunks = chunks()
    return table


# -- JSON Lines ------------------------------------------------------------------------------
def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def read_jsonl(path: Path, chunk_rows: int = CHUNK_ROWS) -> Table:
    """One JSON object per line; keys are the headers. Numbers are kept as written (Decimal)."""
    try:
        fh = path.open("r", encoding="utf-8-sig")
    except OSError as exc:
        raise UnreadableInput(f"{path.name}: {exc}") from exc
    size = path.stat().st_size
    first_lines: list[tuple[int, str]] = []
    headers: list[str] = []
    for number, line in enumerate(fh, start=1):
        if line.strip():
            first_lines.append((number, line))
            if len(first_lines) >= 200:
                break
    for _, line in first_lines:
        try:
            obj = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            headers += [k for k in obj if k not in headers]
    if not headers:
        fh.close()
        raise UnreadableInput(f"{path.name}: no JSON object on the first lines")
    table = Table(path.name, list(headers), iter(()), size)

    def lines() -> Iterator[tuple[int, str]]:
        yield from first_lines
        start = first_lines[-1][0] + 1 if first_lines else 1
        for number, line in enumerate(fh, start=start):
            if line.strip():
                yield number, line

    def chunks() -> Iterator[pl.DataFrame]:
        rows: list[list[str | None]] = []
        numbers: list[int] = []
        done = 0
        keys = table.headers
        for number, line in lines():
            done += len(line)
            try:
                obj = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError:
                obj = {"__unreadable__": line.strip()[:200]}
            if not isinstance(obj, dict):
                obj = {"__unreadable__": line.strip()[:200]}
            for k in obj:
                if k not in keys:
                    keys.append(k)
            rows.append([_scalar(obj.get(k)) for k in keys])
            numbers.append(number)
            if len(rows) >= chunk_rows:
                table.progress["done"] = min(0.99, done / max(1, size))
                yield _numbered(keys, rows, numbers)
                rows, numbers = [], []
        if rows:
            yield _numbered(keys, rows, numbers)
        fh.close()
        table.progress["done"] = 1.0

    table.chunks = chunks()
    return table


def _numbered(keys: list[str], rows: list[list[str | None]], numbers: list[int]) -> pl.DataFrame:
    frame = _frame(list(keys), rows, 0)
    return frame.with_columns(pl.Series("row", numbers, dtype=pl.Int64))


def open_table(path: Path, chunk_rows: int = CHUNK_ROWS) -> Table:
    if not path.is_file():
        raise UnreadableInput(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, chunk_rows)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return read_jsonl(path, chunk_rows)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(path, chunk_rows)
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK"):
        return read_xlsx(path, chunk_rows)
    if magic.lstrip().startswith(b"{"):
        return read_jsonl(path, chunk_rows)
    return read_csv(path, chunk_rows)

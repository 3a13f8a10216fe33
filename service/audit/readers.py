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

from service.config import Settings

CHUNK_ROWS = 200_000
CHUNK_CELLS = 4_000_000  # an .xlsx chunk's cells, at most (read_xlsx)


class UnreadableInput(Exception):
    """The file cannot be read as an audit file at all (exit code 2, HTTP 422)."""


class InputTooLarge(UnreadableInput):
    """The file is past one of the limits (``Limits``): refused before it is read (exit code 2,
    HTTP 413)."""


@dataclass(frozen=True)
class Limits:
    """What an input may be, checked before memory grows with it (settings: AUDIT_MAX_…).
    The defaults let real files through: a bureau's table is tens of thousands of rows."""

    uncompressed_bytes: int = 256_000_000  # an .xlsx's parts, inflated
    cell_chars: int = 32_767  # Excel's own limit on a cell's text
    columns: int = 1_000
    line_bytes: int = 1_000_000  # a CSV record or a JSON Lines line
    # An .xlsx part inflated this many times over what it takes in the zip, once it is past
    # 16 MB: a real sheet compresses 5-15 times, a bomb thousands of times.
    inflation: int = 200


def limits_of(settings: Settings) -> Limits:
    """The settings' limits (AUDIT_MAX_…), as the readers take them."""
    return Limits(
        uncompressed_bytes=settings.audit_max_uncompressed_bytes,
        cell_chars=settings.audit_max_cell_chars,
        columns=settings.audit_max_columns,
        line_bytes=settings.audit_max_line_bytes,
    )


def _columns(name: str, headers: list[str], limits: Limits) -> list[str]:
    if len(headers) > limits.columns:
        raise InputTooLarge(f"{name}: {len(headers):,} columns, more than {limits.columns:,}")
    return headers


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
def _encoding(head: bytes) -> str | None:
    """None for UTF-8; else the encoding the file is re-encoded from: UTF-16 (Excel's
    "Unicode text", with its byte-order mark) or GB18030 (Chinese spreadsheets' CSV)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut at the sample's end
            return None
    return "gb18030"


def _utf8(path: Path, temporary: list[Path]) -> Path:
    """The file as UTF-8: itself, or a copy re-encoded once, listed in ``temporary`` (removed
    by whoever opened the table, also when the audit fails)."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    encoding = _encoding(head)
    if encoding is None:
        return path
    handle, name = tempfile.mkstemp(prefix="audit-", suffix=".csv")
    out = Path(name)
    temporary.append(out)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    with path.open("rb") as src, open(handle, "w", encoding="utf-8") as dst:
        while block := src.read(1 << 20):
            dst.write(decoder.decode(block))
        dst.write(decoder.decode(b"", final=True))
    return out


def read_csv(
    path: Path, chunk_rows: int = CHUNK_ROWS, limits: Limits = Limits(),
    temporary: list[Path] | None = None,
) -> Table:  # fmt: skip
    try:
        source = _utf8(path, temporary if temporary is not None else [])
    except OSError as exc:
        raise UnreadableInput(f"{path.name}: {exc}") from exc
    try:
        with source.open("r", encoding="utf-8-sig") as fh:
            first = fh.readline(limits.line_bytes + 1)
            if len(first) > limits.line_bytes:
                raise InputTooLarge(
                    f"{path.name}: the header row is longer than {limits.line_bytes:,} bytes"
                )
            lines = [fh.readline(limits.line_bytes + 1) for _ in range(200)]
            if any(len(line) > limits.line_bytes for line in lines):
                raise InputTooLarge(
                    f"{path.name}: a record is longer than {limits.line_bytes:,} bytes"
                )
            sample = first + "".join(lines)
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
    names = _unique_headers(_columns(path.name, headers, limits))
    size = source.stat().st_size
    per_row = max(1.0, len(sample.encode()) / max(1, sample.count("\n")))
    table = Table(path.name, names, iter(()), size)

    block = min(max(1 << 16, int(chunk_rows * per_row)), 64 << 20)
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
                        if len(carry) > max(limits.line_bytes, block):
                            raise InputTooLarge(
                                f"{path.name}: a record (from row {row}) is longer than "
                                f"{limits.line_bytes:,} bytes"
                            )
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


def check_xlsx(path: Path, limits: Limits) -> None:
    """Refuse a workbook before openpyxl inflates it: parts past the limits inflated, or past
    ``limits.inflation`` times their size in the zip; a shared string (openpyxl keeps them
    all in memory) longer than a cell may be."""
    import zipfile
    from xml.etree.ElementTree import iterparse

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            inflated = sum(p.file_size for p in parts)
            if inflated > limits.uncompressed_bytes:
                raise InputTooLarge(
                    f"{path.name}: {inflated:,} bytes once inflated, more than "
                    f"{limits.uncompressed_bytes:,}"
                )
            for part in parts:
                if part.file_size > 16 << 20 and part.file_size > limits.inflation * max(
                    1, part.compress_size
                ):
                    raise InputTooLarge(
                        f"{path.name}: {part.filename} inflates {part.file_size:,} bytes from "
                        f"{part.compress_size:,}"
                    )
            strings = next((p for p in parts if p.filename.endswith("sharedStrings.xml")), None)
            if strings is None:
                return
            with archive.open(strings) as fh:
                for _, element in iterparse(fh):
                    if element.tag.endswith("}t") or element.tag == "t":
                        if element.text is not None and len(element.text) > limits.cell_chars:
                            raise InputTooLarge(
                                f"{path.name}: a text of {len(element.text):,} characters, "
                                f"more than a cell's {limits.cell_chars:,}"
                            )
                    elif element.tag.endswith("}si"):
                        element.clear()
    except InputTooLarge:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ParseError, …: openpyxl says it better
        if isinstance(exc, MemoryError):
            raise
        return


def read_xlsx(
    path: Path, chunk_rows: int = CHUNK_ROWS, sheet: int = 0, limits: Limits = Limits()
) -> Table:
    import openpyxl  # imported here: only Excel input needs it
    from openpyxl.utils.exceptions import InvalidFileException

    if sheet == 0:
        check_xlsx(path, limits)
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
    if len(headers) > limits.columns:
        book.close()
    names = _unique_headers(_columns(name, headers, limits))
    total = max(1, (ws.max_row or 1) - header_row)
    table = Table(name, names, iter(()), path.stat().st_size, sheets=titles)

    def chunks() -> Iterator[pl.DataFrame]:
        try:
            yield from sheet_chunks()
        except UnreadableInput:
            raise
        except Exception as exc:  # a sheet's XML broken past its header: openpyxl's errors
            book.close()
            raise UnreadableInput(f"{name}: the sheet cannot be read ({exc})") from exc

    # A chunk holds at most CHUNK_CELLS cells as Python text: a wide sheet (a thousand columns
    # of a highly compressible sheet) comes in smaller chunks, not in more memory.
    per_chunk = max(1, min(chunk_rows, CHUNK_CELLS // max(1, len(names))))

    def sheet_chunks() -> Iterator[pl.DataFrame]:
        # Blank rows are left out (a sheet may claim a million of them: openpyxl yields each),
        # each kept row with its number as Excel shows it.
        batch: list[list[str | None]] = []
        numbers: list[int] = []
        rows = ws.iter_rows(min_row=header_row + 1, max_col=len(names), values_only=True)
        for number, values in enumerate(rows, start=header_row + 1):
            if all(v is None for v in values):
                continue
            cells = [cell_text(v) for v in values[: len(names)]]
            if any(c is not None and len(c) > limits.cell_chars for c in cells):
                book.close()
                raise InputTooLarge(
                    f"{name}: row {number} has a cell longer than {limits.cell_chars:,} characters"
                )
            batch.append(cells)
            numbers.append(number)
            if len(batch) >= per_chunk:
                table.progress["done"] = min(0.99, (number - header_row) / total)
                yield _numbered(names, batch, numbers)
                batch, numbers = [], []
        if batch:
            yield _numbered(names, batch, numbers)
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


def _json_line(line: str) -> Any:
    """A line's object; a line that is no JSON, nested past the parser's depth or with a number
    past Python's digits limit is an unreadable row (a finding), never an exception."""
    try:
        return json.loads(line, parse_float=Decimal)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None


def read_jsonl(
    path: Path, chunk_rows: int = CHUNK_ROWS, limits: Limits = Limits(),
    temporary: list[Path] | None = None,
) -> Table:  # fmt: skip
    """One JSON object per line; keys are the headers. Numbers are kept as written (Decimal)."""
    try:
        source = _utf8(path, temporary if temporary is not None else [])
        fh = source.open("r", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise UnreadableInput(f"{path.name}: {exc}") from exc

    def long(number: int) -> InputTooLarge:
        fh.close()
        return InputTooLarge(
            f"{path.name}: line {number} is longer than {limits.line_bytes:,} bytes"
        )

    size = path.stat().st_size
    first_lines: list[tuple[int, str]] = []
    headers: list[str] = []
    for number, line in enumerate(iter(lambda: fh.readline(limits.line_bytes + 1), ""), start=1):
        if len(line) > limits.line_bytes:
            raise long(number)
        if line.strip():
            first_lines.append((number, line))
            if len(first_lines) >= 200:
                break
    for _, line in first_lines:
        obj = _json_line(line)
        if isinstance(obj, dict):
            headers += [k for k in obj if k not in headers]
            if len(headers) > limits.columns:
                fh.close()
                _columns(path.name, headers, limits)
    if not headers:
        fh.close()
        raise UnreadableInput(f"{path.name}: no JSON object on the first lines")
    table = Table(path.name, list(headers), iter(()), size)

    def lines() -> Iterator[tuple[int, str]]:
        yield from first_lines
        start = first_lines[-1][0] + 1 if first_lines else 1
        lines = iter(lambda: fh.readline(limits.line_bytes + 1), "")
        for number, line in enumerate(lines, start=start):
            if len(line) > limits.line_bytes:
                raise long(number)
            if line.strip():
                yield number, line

    def chunks() -> Iterator[pl.DataFrame]:
        rows: list[list[str | None]] = []
        numbers: list[int] = []
        done = 0
        keys = table.headers
        for number, line in lines():
            done += len(line)
            obj = _json_line(line)
            if not isinstance(obj, dict):
                obj = {"__unreadable__": line.strip()[:200]}
            for k in obj:
                if k not in keys:
                    keys.append(k)
            if len(keys) > limits.columns:
                fh.close()
                _columns(path.name, keys, limits)
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


def open_table(
    path: Path, chunk_rows: int = CHUNK_ROWS, limits: Limits = Limits(),
    temporary: list[Path] | None = None,
) -> Table:  # fmt: skip
    """``temporary``: where re-encoded copies are listed, for the caller to remove."""
    if not path.is_file():
        raise UnreadableInput(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, chunk_rows, limits=limits)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return read_jsonl(path, chunk_rows, limits, temporary)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(path, chunk_rows, limits, temporary)
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK"):
        return read_xlsx(path, chunk_rows, limits=limits)
    if magic.lstrip().startswith(b"{"):
        return read_jsonl(path, chunk_rows, limits, temporary)
    return read_csv(path, chunk_rows, limits, temporary)

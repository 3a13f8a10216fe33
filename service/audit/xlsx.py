"""A minimal .xlsx writer for findings: sheets of text and numbers, rows built as XML in polars.

openpyxl writes ~3,000 rows a second here (an element tree per cell); an audit may have
hundreds of thousands of findings. The format needs only a handful of fixed parts and one XML
file per sheet, whose rows are plain text, so they are built column-wise and streamed into the
zip. Texts go once into the shared strings (findings repeat their programs, applicants and
messages: the XML to compress is less than half of inline text). Amounts are written as
numbers with two decimals from their exact text.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
{sheets}</Types>"""
SHEET_TYPE = '<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>\n'
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets>{sheets}</sheets></workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
{rels}<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
<Relationship Id="rIdT" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""
STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0.00"/></numFmts>
<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""
SHEET_HEAD = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
"""
SHEET_TAIL = "</sheetData></worksheet>"
STRINGS_HEAD = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{count}" uniqueCount="{unique}">
"""
STRINGS_TAIL = "</sst>"
MAX_ROWS = 1_048_576
ROWS_AT_ONCE = 20_000  # a row's XML is about a kilobyte: memory stays flat


def _escape(text: pl.Expr) -> pl.Expr:
    # Control characters are not allowed in XML 1.0 at all.
    cleaned = text.str.replace_all(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "")
    return (
        cleaned.str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
    )


def _cell(name: str, number: bool) -> pl.Expr:
    """A number from its text, or a text by its place in the shared strings."""
    col = pl.col(name)
    tag = '<c s="1"><v>' if number else '<c t="s"><v>'
    return (
        pl.when(col.is_null())
        .then(pl.lit("<c/>"))
        .otherwise(pl.concat_str(pl.lit(tag), col.cast(pl.String), pl.lit("</v></c>")))
    )


def _shared(
    sheets: list[tuple[str, list[str], pl.DataFrame, set[str]]],
) -> tuple[list[pl.DataFrame], pl.Series, int]:
    """Each sheet with its texts replaced by their place in the shared strings; the strings
    (in order of first use) and how many text cells refer to them."""
    columns = [
        (i, c) for i, (_, _, f, numbers) in enumerate(sheets) for c in f.columns if c not in numbers
    ]
    every = pl.concat([sheets[i][2][c].cast(pl.String) for i, c in columns]) if columns else None
    if every is None:
        return [f for _, _, f, _ in sheets], pl.Series(dtype=pl.String), 0
    strings = every.drop_nulls().unique(maintain_order=True)
    places = every.cast(pl.Enum(strings)).to_physical()  # one lookup for every text cell
    frames = [f for _, _, f, _ in sheets]
    offset = 0
    for i, c in columns:
        height = frames[i].height
        frames[i] = frames[i].with_columns(places.slice(offset, height).alias(c))
        offset += height
    return frames, strings, every.len() - every.null_count()


def _strings_xml(strings: pl.Series) -> pl.DataFrame:
    return strings.to_frame("t").select(
        pl.concat_str(
            pl.lit('<si><t xml:space="preserve">'), _escape(pl.col("t")), pl.lit("</t></si>")
        )
    )


def _header(headers: list[str]) -> str:
    cells = "".join(
        f'<c t="inlineStr" s="2"><is><t>{h.replace("&", "&amp;").replace("<", "&lt;")}</t></is></c>'
        for h in headers
    )
    return f'<row r="1">{cells}</row>\n'


def _rows(frame: pl.DataFrame, numbers: set[str], start: int) -> pl.DataFrame:
    """The XML of ``ROWS_AT_ONCE`` rows from ``start``, one string per row."""
    chunk = frame.slice(start, ROWS_AT_ONCE).with_row_index("_r", offset=start + 2)
    return chunk.select(
        pl.concat_str(
            pl.lit('<row r="'),
            pl.col("_r").cast(pl.String),
            pl.lit('">'),
            *(_cell(c, c in numbers) for c in frame.columns),
            pl.lit("</row>"),
        )
    )


class _Member:
    """One file of the package, deflated in memory as it is written (a file-like sink, for
    polars): its compressed bytes, CRC-32 and size, for the zip around it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.crc = self.size = 0
        self.parts: list[bytes] = []
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, -15)  # raw deflate, as zip has it

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self.parts.append(self._deflate.compress(data))
        return len(data)

    def done(self) -> _Member:
        self.parts.append(self._deflate.flush())
        return self


def _text(name: str, text: str) -> _Member:
    member = _Member(name)
    member.write(text.encode())
    return member.done()


def _zip(path: Path, members: list[_Member]) -> None:
    """The package: each member's local header and bytes, then the central directory. The
    members are deflated beforehand, side by side (zipfile compresses one after another)."""
    central, offset = [], 0
    with path.open("wb") as out:
        for m in members:
            name = m.name.encode()
            packed = sum(len(p) for p in m.parts)
            fields = (20, 0, 8, 0, 0x21, m.crc, packed, m.size, len(name))  # 1980-01-01 00:00
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + name)
            out.writelines(m.parts)
            central.append(
                struct.pack("<IH", 0x02014B50, 20)
                + struct.pack("<HHHHHIIIHHHHHII", *fields, 0, 0, 0, 0, 0, offset)
                + name
            )
            offset += 30 + len(name) + packed
        directory = b"".join(central)
        out.write(directory)
        n = len(members)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(directory), offset, 0))


def _sheet(index: int, headers: list[str], frame: pl.DataFrame, numbers: set[str]) -> _Member:
    out = _Member(f"xl/worksheets/sheet{index + 1}.xml")
    out.write(SHEET_HEAD.encode())
    out.write(_header(headers).encode())
    # The next rows are built while these are compressed (both outside the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx") as pool:
        starts = range(0, frame.height, ROWS_AT_ONCE)
        ahead = [pool.submit(_rows, frame, numbers, start) for start in starts[:1]]
        for start in starts:
            rows = ahead.pop().result()
            if start + ROWS_AT_ONCE < frame.height:
                ahead.append(pool.submit(_rows, frame, numbers, start + ROWS_AT_ONCE))
            # One line per row, written by polars straight into the deflate stream.
            rows.write_csv(out, include_header=False, quote_style="never")  # type: ignore[call-overload]
    out.write(SHEET_TAIL.encode())
    return out.done()


def _strings(strings: pl.Series, count: int) -> _Member:
    out = _Member("xl/sharedStrings.xml")
    out.write(STRINGS_HEAD.format(count=count, unique=strings.len()).encode())
    _strings_xml(strings).write_csv(out, include_header=False, quote_style="never")  # type: ignore[call-overload]
    out.write(STRINGS_TAIL.encode())
    return out.done()


def write_xlsx(path: Path, sheets: list[tuple[str, list[str], pl.DataFrame, set[str]]]) -> int:
    """``sheets``: (name, header texts, frame, names of number columns given as exact text).
    Returns how many data rows were written to the first sheet (Excel's limit applies)."""
    sheets = [(n, h, frame.head(MAX_ROWS - 1), numbers) for n, h, frame, numbers in sheets]
    frames, strings, count = _shared(sheets)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-strings") as pool:
        shared = pool.submit(_strings, strings, count)  # deflated while the sheets are
        parts = [
            _sheet(i, headers, frame, numbers)
            for i, ((_, headers, _, numbers), frame) in enumerate(zip(sheets, frames, strict=True))
        ]
        parts.append(shared.result())
    types = "".join(SHEET_TYPE.format(n=i + 1) for i in range(len(sheets)))
    listed = "".join(
        f'<sheet name="{name}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
        for i, (name, *_r) in enumerate(sheets)
    )
    rels = "".join(
        f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>\n'
        for i in range(len(sheets))
    )
    fixed = [
        _text("[Content_Types].xml", CONTENT_TYPES.format(sheets=types)),
        _text("_rels/.rels", ROOT_RELS),
        _text("xl/workbook.xml", WORKBOOK.format(sheets=listed)),
        _text("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(rels=rels)),
        _text("xl/styles.xml", STYLES),
    ]
    _zip(path, fixed + parts)
    return frames[0].height if frames else 0

"""Hostile audit uploads: refused before memory grows (413 / exit code 2), read where they can
be (UTF-16), an unreadable line a finding, never a traceback; temporary copies removed."""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.audit.cli import main
from service.audit.context import AuditOptions
from service.audit.readers import InputTooLarge, Limits
from service.audit.run import AuditTooLong, run_audit
from service.config import Settings
from service.main import create_app
from service.rules.loader import RuleBook
from tests.authsupport import authorise
from tests.conftest import RULES

FIXTURES = Path(__file__).parent / "audit_fixtures"
EMPTY_LIST = FIXTURES / "empty_list.txt"
ROOT = Path(__file__).resolve().parent.parent

SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    "</sheetData></worksheet>"
)
TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/></Types>'
)


def shared_string_bomb(path: Path, chars: int) -> Path:
    """A workbook whose one shared string is ``chars`` long: a few hundred KB on disk."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", TYPES)
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:  # written in pieces
            fh.write(head.encode())
            for start in range(0, chars, 1 << 20):
                fh.write(b"A" * min(1 << 20, chars - start))
            fh.write(b"</t></si></sst>")
        z.writestr("xl/worksheets/sheet1.xml", SHEET)
    return path


def cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--rules", str(RULES), "--disqualified", str(EMPTY_LIST), *args]
    return main(argv, stdout=out, stderr=err), err.getvalue()


def test_a_shared_string_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    bomb = shared_string_bomb(tmp_path / "bomb.xlsx", 300_000_000)
    assert bomb.stat().st_size < 1_000_000
    # In a process of its own, to measure its peak: refused, and far below 1 GB.
    script = (
        "import sys\n"
        "from service.audit.cli import main\n"
        f"code = main(['--rules', {str(RULES)!r}, '--disqualified', {str(EMPTY_LIST)!r}, "
        f"{str(bomb)!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(code, peak.split()[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    code, peak_kb = done.stdout.split()
    assert code == "2" and "Traceback" not in done.stderr, done.stderr
    assert int(peak_kb) < 1_000_000
    assert "inflates" in done.stderr or "once inflated" in done.stderr


def test_a_shared_string_longer_than_a_cell_is_refused(tmp_path: Path) -> None:
    bomb = shared_string_bomb(tmp_path / "long.xlsx", 40_000)
    code, err = cli(str(bomb), "--out", str(tmp_path / "o"))
    assert code == 2 and "characters" in err


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("wide.csv", ",".join(f"c{i}" for i in range(1_500)) + "\n", "columns"),
        ("long.csv", "program_id,note\nipa2022-art06," + "x" * 1_200_000 + "\n", "longer"),
        ("long.jsonl", '{"program_id": "' + "x" * 1_200_000 + '"}\n', "longer"),
    ],
)
def test_past_the_limits_is_exit_2(tmp_path: Path, name: str, content: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, err = cli(str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and says in err and "Traceback" not in err


def test_utf16_csv_is_read_as_the_utf8_one(book: RuleBook, tmp_path: Path) -> None:
    text = (FIXTURES / "awards_zh.csv").read_text("utf-8")
    path = tmp_path / "awards_zh.csv"
    path.write_bytes(text.encode("utf-16"))  # with its byte-order mark, as Excel saves it
    as_utf8 = run_audit(book, FIXTURES / "awards_zh.csv")
    as_utf16 = run_audit(book, path)
    assert as_utf16.findings.equals(as_utf8.findings)


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000 + "]" * 100_000,  # past json's nesting guard
        '{"program_id": "ipa2022-art06", "awarded_amount": ' + "9" * 5_000 + "}",  # int digits
    ],
)
def test_a_json_line_the_parser_refuses_is_an_unreadable_row(tmp_path: Path, line: str) -> None:
    path = tmp_path / "a.jsonl"
    good = '{"award_id": "A1", "program_id": "ipa2022-art06", "awarded_amount": "1.00"}'
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    code, err = cli(str(path), "--out", str(tmp_path / "o"))
    assert code == 1 and "Traceback" not in err
    assert '"unreadable_row": 1' in (tmp_path / "o" / "report.json").read_text("utf-8")


def _copies() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("audit-*.csv"))


def test_re_encoded_copies_are_removed_also_when_the_audit_fails(
    book: RuleBook, tmp_path: Path
) -> None:
    before = _copies()
    gb = tmp_path / "gb.csv"
    gb.write_bytes((FIXTURES / "awards_zh.csv").read_text("utf-8").encode("gb18030"))
    run_audit(book, gb)
    no_program = tmp_path / "bad.csv"
    no_program.write_bytes("单位名称,金额\n甲大学,1\n".encode("gb18030"))
    with pytest.raises(Exception, match="no program column"):
        run_audit(book, no_program)
    assert _copies() == before


def test_an_audit_past_its_time_is_refused(book: RuleBook) -> None:
    with pytest.raises(AuditTooLong):
        run_audit(book, FIXTURES / "awards_zh.csv", options=AuditOptions(max_seconds=0.0))
    assert issubclass(AuditTooLong, InputTooLarge)


def test_limits_come_from_the_settings() -> None:
    from service.audit.readers import limits_of

    settings = Settings(audit_max_columns=7, audit_max_cell_chars=9)
    assert limits_of(settings) == Limits(
        uncompressed_bytes=settings.audit_max_uncompressed_bytes,
        cell_chars=9,
        columns=7,
        line_bytes=settings.audit_max_line_bytes,
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("audit-hostile")
    app: FastAPI = create_app(
        Settings(
            rules_dir=RULES,
            database_url=f"sqlite:///{folder / 'db.sqlite'}",
            auto_migrate=True,
            engine="python",
            audit_max_concurrent=1,
        )
    )
    with TestClient(app) as c:
        authorise(c, app)
        yield c


def test_endpoint_refuses_a_bomb_with_413(client: TestClient, tmp_path: Path) -> None:
    bomb = shared_string_bomb(tmp_path / "bomb.xlsx", 300_000_000)
    response = client.post("/v1/audit", files={"file": ("bomb.xlsx", bomb.read_bytes())})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "audit_input_too_large"


@pytest.mark.parametrize(
    "line", ["[" * 100_000, '{"program_id": "x", "awarded_amount": ' + "9" * 5_000 + "}"]
)
def test_endpoint_reads_refused_json_lines_as_findings(client: TestClient, line: str) -> None:
    response = client.post(
        "/v1/audit", content=line.encode(), headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code in (200, 422), response.text  # one line only: no header
    assert "Traceback" not in response.text


def test_endpoint_refuses_past_its_concurrent_audits(client: TestClient) -> None:
    app = client.app
    slots = threading.BoundedSemaphore(1)
    slots.acquire()
    app.state.audit_slots = slots  # type: ignore[attr-defined]
    try:
        with (FIXTURES / "awards_zh.csv").open("rb") as f:
            response = client.post("/v1/audit", files={"file": ("a.csv", f)})
        assert response.status_code == 503 and response.json()["code"] == "audits_busy"
    finally:
        slots.release()
    with (FIXTURES / "awards_zh.csv").open("rb") as f:
        assert client.post("/v1/audit", files={"file": ("a.csv", f)}).status_code == 200


def test_a_sheet_claiming_a_million_blank_rows(book: RuleBook, tmp_path: Path) -> None:
    """openpyxl yields every row up to the last one a sheet names: blank ones are skipped, the
    others keep the numbers Excel shows."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
        '.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>program_id</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>awarded_amount</t></is></c></row>'
        '<row r="300000"><c r="A300000" t="inlineStr"><is><t>ipa2022-art06</t></is></c>'
        '<c r="B300000"><v>900000</v></c></row></sheetData></worksheet>'
    )
    workbook = (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org'
        '/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
        '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>'
    )
    root_rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
        '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    )
    types = TYPES.replace(
        "</Types>",
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    )
    path = tmp_path / "sparse.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", root_rels)
        z.writestr("xl/workbook.xml", workbook)
        z.writestr("xl/_rels/workbook.xml.rels", rels)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    found = run_audit(book, path).findings
    assert found.filter(kind="above_cap")["row"].to_list() == [300000]

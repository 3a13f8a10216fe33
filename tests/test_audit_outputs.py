"""The audit's command line (exit codes 0/1/2, the four outputs) and POST /v1/audit."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.audit.cli import main
from service.config import Settings
from service.main import create_app
from tests.authsupport import authorise
from tests.conftest import DISQUALIFIED_USCC, RULES

FIXTURES = Path(__file__).parent / "audit_fixtures"


NO_LIST = Path(__file__).parent / "audit_fixtures" / "empty_list.txt"


def run_cli(*args: str) -> tuple[int, str, str]:
    """The command, with an empty 第二十六条 list unless one is given."""
    out, err = io.StringIO(), io.StringIO()
    if "--disqualified" not in args:
        args = (*args, "--disqualified", str(NO_LIST))
    code = main(["--rules", str(RULES), *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_four_outputs_and_exits_1_on_findings(tmp_path: Path) -> None:
    listing = tmp_path / "dq.txt"
    listing.write_text(DISQUALIFIED_USCC + "\n", encoding="utf-8")
    code, out, _ = run_cli(
        str(FIXTURES / "awards_zh.csv"),
        "--out",
        str(tmp_path / "o"),
        "--disqualified",
        str(listing),
    )
    assert code == 1
    assert "10 findings" in out  # 备注 is a note column, not unknown
    csv = (tmp_path / "o" / "findings.csv").read_bytes()
    assert csv.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese correctly
    assert "第二十六条" in csv.decode("utf-8-sig")
    report = json.loads((tmp_path / "o" / "report.json").read_text("utf-8"))
    assert report["finding_count"] == len(report["findings"]) == 10
    assert report["amount_at_stake"] == "414500.00"  # per award, its largest finding
    assert {p["program_id"] for p in report["programs"]} >= {"ipa2022-art19", "ipa2022-art99"}
    sheet = openpyxl.load_workbook(tmp_path / "o" / "findings.xlsx", read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 12 and rows[0][0] == "文件" and rows[1][0] == "source"
    assert any(r[8] == "above_cap" and r[14] == 50000 for r in rows[2:])
    page = (tmp_path / "o" / "summary.html").read_text("utf-8")
    assert page.count("<svg") == len(report["programs"]) and "http" not in page.replace(
        "http://www.w3", ""
    )


def test_no_temporary_files_are_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files a run keeps on disk (item keys per batch, partitions) are gone when the command
    ends, in award order and in partitions (the second file is out of order)."""
    import tempfile

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    header, *rows = (FIXTURES / "items_en.csv").read_text("utf-8").splitlines()
    shuffled = tmp_path / "items_shuffled.csv"
    shuffled.write_text("\n".join([header, *reversed(rows)]) + "\n", "utf-8")
    for details in (FIXTURES / "items_en.csv", shuffled):
        code, out, _ = run_cli(
            str(FIXTURES / "awards_en.csv"), "--details", str(details), "--out", str(tmp_path / "o")
        )
        assert code == 1 and "findings" in out
        assert list(temporary.iterdir()) == []


def test_xlsx_reads_back_typed_frozen_filtered_and_sized(tmp_path: Path) -> None:
    """findings.xlsx: Chinese headers over English ones, frozen with filters, kinds and
    severities in Chinese, rows as integers, amounts as numbers with two decimals, widths; the
    programs sheet typed too."""
    code, _, _ = run_cli(str(FIXTURES / "awards_zh.csv"), "--out", str(tmp_path / "o"))
    assert code == 1
    book = openpyxl.load_workbook(tmp_path / "o" / "findings.xlsx")  # not read-only: the views
    findings, programs = book.worksheets
    assert findings.freeze_panes == "A3" and programs.freeze_panes == "A3"
    assert findings.auto_filter.ref is not None and findings.auto_filter.ref.startswith("A2:")
    rows = list(findings.iter_rows(values_only=True))
    assert rows[0][:2] == ("文件", "行号") and rows[1][:2] == ("source", "row")
    cap = next(r for r in rows[2:] if r[8] == "above_cap")
    assert cap[7] == "奖补金额超过上限" and cap[9] == "错误"
    assert isinstance(cap[1], int) and cap[1] == 7 and cap[14] == 50000
    amount = next(c for c in findings["O"][2:] if c.value == 50000)
    assert amount.number_format == "#,##0.00" and amount.data_type == "n"
    widths = {k: d.width for k, d in findings.column_dimensions.items()}
    assert widths["M"] >= 40 and 6 <= widths["B"] <= 12
    by_program = {r[0]: r for r in list(programs.iter_rows(values_only=True))[2:]}
    art06 = by_program["ipa2022-art06"]
    assert art06[1] == "高校知识产权运营中心建设" and art06[2] == "第六条"
    assert isinstance(art06[3], int) and art06[5] == 850000 and art06[6] == 800000


def test_cli_exit_0_when_clean_and_2_when_unreadable(tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_text(
        json.dumps(
            {
                "program_id": "ipa2022-art10-3",
                "applicant_uscc": "123100004250061179",
                "awarded_amount": "100000.00",
                "awarded_on": "2023-03-10",
                "recognised_on": "2023-03-01",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    assert run_cli(str(clean), "--out", str(tmp_path / "c"))[0] == 0
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    code, _, err = run_cli(str(broken), "--out", str(tmp_path / "b"))
    assert code == 2 and "cannot read" in err
    assert run_cli(str(tmp_path / "nothing.csv"), "--out", str(tmp_path / "n"))[0] == 2


def test_progress_bar_on_stderr(tmp_path: Path) -> None:
    code, _, err = run_cli(
        str(FIXTURES / "awards_en.csv"),
        "--details",
        str(FIXTURES / "items_en.csv"),
        "--out",
        str(tmp_path / "p"),
        "--progress",
        "on",
    )
    assert code == 1 and "100%" in err and "rows" in err


@pytest.fixture(scope="module")
def audit_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("audit-api")
    listing = folder / "dq.txt"
    listing.write_text(DISQUALIFIED_USCC + "\n", encoding="utf-8")
    app: FastAPI = create_app(
        Settings(
            rules_dir=RULES,
            disqualified_file=listing,
            database_url=f"sqlite:///{folder / 'db.sqlite'}",
            auto_migrate=True,
            engine="python",
        )
    )
    app.state.settings_url = f"sqlite:///{folder / 'db.sqlite'}"
    with TestClient(app) as client:
        authorise(client, app)
        yield client


def test_api_multipart_upload_with_details(audit_client: TestClient) -> None:
    with (FIXTURES / "awards_en.csv").open("rb") as a, (FIXTURES / "items_en.csv").open("rb") as d:
        response = audit_client.post(
            "/v1/audit", files={"file": ("awards_en.csv", a), "details": ("items_en.csv", d)}
        )
    assert response.status_code == 200, response.text
    report = response.json()
    kinds = {f["kind"] for f in report["findings"]}
    assert {"above_entitlement", "claimed_by_two_applicants", "funded_twice"} <= kinds
    e2 = next(f for f in report["findings"] if f["award_id"] == "E2")
    assert e2["amount_at_stake"] == "0.44" and e2["article"] == "第二十条"
    assert report["layout"] == "award_order"  # both files are sorted by award id


def test_api_excel_upload(audit_client: TestClient) -> None:
    with (FIXTURES / "awards_zh.xlsx").open("rb") as f:
        response = audit_client.post("/v1/audit", files={"file": ("审计.xlsx", f)})
    assert response.status_code == 200, response.text
    assert response.json()["finding_count"] == 10  # the 第二十六条 list is the service's own
    assert response.json()["inputs"] == ["审计.xlsx"]  # the upload's own name


def test_api_json_lines_body(audit_client: TestClient) -> None:
    response = audit_client.post(
        "/v1/audit",
        content=(FIXTURES / "awards.jsonl").read_bytes(),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["by_kind"]["above_entitlement"] == 1


def test_api_unreadable_file_is_422(audit_client: TestClient) -> None:
    response = audit_client.post("/v1/audit", files={"file": ("x.xlsx", b"PK junk")})
    assert response.status_code == 422
    assert response.json()["code"] == "unreadable_audit_input"


def test_the_command_and_the_endpoint_agree_on_one_upload(
    audit_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read the 第二十六条 list the service stores (DATABASE_URL), unless a file is given."""
    from service.config import get_settings

    with (FIXTURES / "awards_zh.csv").open("rb") as f:
        response = audit_client.post("/v1/audit", files={"file": ("awards_zh.csv", f)})
    assert response.status_code == 200, response.text
    api = response.json()
    monkeypatch.setenv("DATABASE_URL", audit_client.app.state.settings_url)  # type: ignore[attr-defined]
    get_settings.cache_clear()
    try:
        out, err = io.StringIO(), io.StringIO()
        argv = ["--rules", str(RULES), str(FIXTURES / "awards_zh.csv"), "--out", str(tmp_path)]
        code = main(argv, stdout=out, stderr=err)
    finally:
        get_settings.cache_clear()
    assert code == 1, err.getvalue()
    cli = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert cli["by_kind"] == api["by_kind"] and cli["amount_at_stake"] == api["amount_at_stake"]
    assert "ineligible_applicant" in cli["by_kind"]  # the stored list's USCC
    strip = [{k: v for k, v in f.items() if k != "source"} for f in cli["findings"]]
    assert strip == [{k: v for k, v in f.items() if k != "source"} for f in api["findings"]]


def test_the_command_without_a_database_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.config import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'none.sqlite'}")
    get_settings.cache_clear()
    try:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--rules", str(RULES), str(FIXTURES / "awards_zh.csv"), "--out", str(tmp_path)],
            stdout=out,
            stderr=err,
        )
    finally:
        get_settings.cache_clear()
    assert code == 2 and "--disqualified" in err.getvalue()
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "spreadsheetml"),
        ("text/html,application/xhtml+xml;q=0.9", "text/html"),
        ("*/*", "application/json"),
    ],
)
def test_api_returns_the_report_as_asked(audit_client: TestClient, accept: str, media: str) -> None:
    with (FIXTURES / "awards_zh.csv").open("rb") as f:
        response = audit_client.post(
            "/v1/audit", files={"file": ("拨付表.csv", f)}, headers={"accept": accept}
        )
    assert response.status_code == 200 and media in response.headers["content-type"]
    if media == "spreadsheetml":
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0]
        assert sheet["A1"].value == "文件" and sheet["A3"].value == "拨付表.csv"
    elif media == "text/html":
        assert "奖补金额超过上限" in response.text and "拨付表.csv" in response.text
    else:
        assert response.json()["inputs"] == ["拨付表.csv"]

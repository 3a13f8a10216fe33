"""The batch audit on small files with known findings, in every input format.

tests/audit_fixtures/: ``awards_zh.csv`` (Chinese headers, 万元, items on continuation rows, bad
rows, the same patent claimed by two applicants) and the same data as ``awards_zh.xlsx`` (Excel
numbers and dates); ``awards_en.csv`` + ``items_en.csv`` (English headers, a detail file: loans
and open-licence contracts); ``awards.jsonl`` (awards carrying their application body);
``summary_zh.csv`` (one row per program: units and total paid).
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from service.audit.context import AuditOptions
from service.audit.readers import UnreadableInput
from service.audit.run import AuditResult, run_audit
from service.rules.loader import RuleBook
from tests.conftest import DISQUALIFIED_USCC

FIXTURES = Path(__file__).parent / "audit_fixtures"


def audit(book: RuleBook, name: str, details: str | None = None, **options: object) -> AuditResult:
    return run_audit(
        book,
        FIXTURES / name,
        FIXTURES / details if details else None,
        disqualified={DISQUALIFIED_USCC},
        options=AuditOptions(**options),  # type: ignore[arg-type]
    )


def found(result: AuditResult) -> set[tuple[object, ...]]:
    """(row, award, kind, rule, amount at stake in fen) for every finding."""
    return set(
        result.findings.select("row", "award_id", "kind", "rule", "amount_at_stake").iter_rows()
    )


ZH_EXPECTED = {
    # 备注 describes a row and counts nothing: kept, not warned about.
    # Z1: 3 patents claimed, 0.45万 = 4,500.00 paid; the third is dated 2023-07-01 (outside).
    (2, "Z1", "above_entitlement", "award", 150000),
    (4, "Z1", "item_outside_window", "contract-in-window", 150000),
    # Z2 claims Z1's first patent (written without ZL): a 第二十六条 red flag.
    (5, "Z2", "claimed_by_two_applicants", "not-disqualified", 150000),
    # Z3: 第十条（一） pays exactly 300,000.00; 35万 was paid, 70 days after recognition.
    (6, "Z3", "above_fixed_amount", "fixed_amount", 5000000),
    (6, "Z3", "late_disbursement", "issue-within-days", 35000000),
    # Z4: 第六条 caps at 800,000.00; 85万 was paid.
    (7, "Z4", "above_cap", "cap", 5000000),
    (8, "Z5", "unknown_program", None, 1000000),
    # Z6: bad USCC check character, unreadable amount: reported, the other rows still audited.
    (9, "Z6", "invalid_uscc", None, None),
    (9, "Z6", "unreadable_amount", None, None),
    # Z7: on the 第二十六条 list.
    (10, "Z7", "ineligible_applicant", "not-disqualified", 150000),
}


@pytest.mark.parametrize("name", ["awards_zh.csv", "awards_zh.xlsx"])
def test_chinese_headers_wan_bad_rows_and_duplicates(book: RuleBook, name: str) -> None:
    result = audit(book, name)
    assert found(result) == ZH_EXPECTED
    assert result.exit_code == 1
    first = result.findings.row(0, named=True)
    assert first["source"] == name and first["row"] == 2  # sorted by file and row


def test_findings_carry_article_severity_and_both_languages(book: RuleBook) -> None:
    rows = {r["kind"]: r for r in audit(book, "awards_zh.csv").findings.iter_rows(named=True)}
    two = rows["claimed_by_two_applicants"]
    assert two["article"] == "第二十六条" and two["severity"] == "error"
    assert "第2行" in two["message_zh"] and "row 2" in two["message_en"]
    assert two["applicant_name"] == "乙大学" and two["item"] == "transactions[0] 2015109060905"
    cap = rows["above_cap"]
    assert cap["article"] == "第六条" and "800000.00" in cap["message_zh"]
    assert "800000.00" in cap["message_en"]
    window = rows["item_outside_window"]
    assert window["article"] == "第十九条" and window["severity"] == "error"  # it was paid for


def test_detail_file_rates_to_the_fen_and_duplicates(book: RuleBook) -> None:
    result = audit(book, "awards_en.csv", "items_en.csv")
    assert found(result) == {
        # E1: 0.1% of (1,000,000.00 + 234,567.89) = 1,234.56789 -> 1,234.56 paid: right; the
        # third loan is outside the window and was not paid for (a warning).
        (4, "E1", "item_outside_window", "disbursed-in-window", 50000),
        # E2: 0.1% of 1,234,567.89 rounds down to 1,234.56; 1,235.00 was paid.
        (3, "E2", "above_entitlement", "award", 44),
        # E3: the same contract twice in one award; E4 claims it too.
        (4, "E3", "above_entitlement", "award", 300000),
        (7, "E3", "claimed_twice", "contract-counted-once", 300000),
        (8, "E4", "claimed_by_two_applicants", "not-disqualified", 300000),
        # E6: a second stcsm grant in the same guide year (表注4: once per organisation).
        (7, "E6", "funded_twice", "one-application-per-guide-year", 10000000),
        (9, None, "orphan_item", None, None),
    }
    severities = dict(result.findings.select("kind", "severity").iter_rows())
    assert severities["item_outside_window"] == "warning"


def test_jsonl_with_application_bodies(book: RuleBook) -> None:
    result = audit(book, "awards.jsonl")
    assert found(result) == {
        (1, "J1", "ineligible_item", "counterparty-shanghai-sme", 150000),
        (1, "J1", "claimed_twice", "patent-counted-once", 150000),
        (1, "J1", "above_entitlement", "award", 150000),
        (2, "J2", "above_cap", "pool", 10000000),
        (None, None, "pool_exceeded", "pool", 10000000),
        (3, None, "unreadable_row", None, None),
        (4, "J3", "invalid_application", None, None),
    }
    j1 = result.findings.filter(pl.col("award_id") == "J1").row(0, named=True)
    assert j1["applicant_uscc"] == "123100004250061179"  # taken from the application


def test_program_summary_file(book: RuleBook) -> None:
    result = audit(book, "summary_zh.csv")
    assert result.meta["level"] == "program_summary"
    assert found(result) == {
        (2, None, "quota_exceeded", "quota", 30000000),
        (3, None, "summary_not_composable", "award", 2000000),
        (5, None, "summary_not_composable", "award", 150000),
        (6, None, "summary_not_composable", "award", 10000000),
        (7, None, "unknown_program", None, 1000000),
        (8, None, "unreadable_value", None, None),
        (8, None, "missing_value", None, None),
        (None, None, "pool_exceeded", "pool", 150000),
    }


def test_clean_file(book: RuleBook, tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    path.write_text(
        "项目,统一社会信用代码,单位名称,奖补金额,下达日期,认定日期\n"
        "ipa2022-art10-2,123100004250061179,甲大学,100000.00,2023-03-10,2023-03-01\n",
        encoding="utf-8",
    )
    result = run_audit(book, path)
    assert result.findings.height == 0 and result.exit_code == 0


def test_unreadable_inputs(book: RuleBook, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    no_program = tmp_path / "no_program.csv"
    no_program.write_text("单位名称,奖补金额\n甲,1\n", encoding="utf-8")
    for path in (broken, empty, no_program, tmp_path / "missing.csv"):
        with pytest.raises(UnreadableInput):
            run_audit(book, path)


def test_gb18030_csv(book: RuleBook, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    text = (FIXTURES / "awards_zh.csv").read_text("utf-8")
    path.write_bytes(text.encode("gb18030"))
    assert found(run_audit(book, path, disqualified={DISQUALIFIED_USCC})) == ZH_EXPECTED


def test_partitions_spilled_to_disk_give_the_same_findings(book: RuleBook) -> None:
    """Large inputs are split into partitions on disk: the findings must not depend on it."""
    whole = audit(book, "awards_en.csv", "items_en.csv")
    spilled = audit(
        book,
        "awards_en.csv",
        "items_en.csv",
        chunk_rows=2,
        partition_bytes=200,
        layout="partitions",
    )
    assert spilled.meta["partitions"] > 1
    assert found(spilled) == found(whole)
    zh = audit(book, "awards_zh.csv", chunk_rows=3, partition_bytes=300, layout="partitions")
    assert zh.meta["partitions"] > 1 and found(zh) == ZH_EXPECTED


def test_spill_keeps_whole_groups_in_file_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partitions on disk are blocks appended to one file each: every row comes back once, in
    the partition of its key, in the order it was put, whatever the blocks and columns."""
    from service.audit.spill import Spill

    monkeypatch.setattr(Spill, "FLUSH_BYTES", 2_000)
    spill = Spill(4)
    put = []
    try:
        for chunk in range(6):
            frame = pl.DataFrame(
                {
                    "rec": [f"A{(chunk * 7 + i) % 23}" for i in range(40)],
                    "row": [chunk * 40 + i for i in range(40)],
                    f"fact{chunk % 2}": [f"v{i}" for i in range(40)],
                }
            )
            spill.put("items", frame, ["rec"])
            put.append(frame)
        parts = [spill.get("items", part) for part in range(4)]
    finally:
        spill.close()
    everything = pl.concat(put, how="diagonal")
    got = [p for p in parts if p is not None]
    assert sum(p.height for p in got) == everything.height
    seen: set[str] = set()
    for p in got:
        assert p["row"].is_sorted()  # file order
        recs = set(p["rec"].to_list())
        assert not recs & seen  # a key lives in one partition only
        seen |= recs
        expected = everything.filter(pl.col("rec").is_in(list(recs))).sort("row")
        assert p.select(expected.columns).equals(expected)


def test_csv_blocks_cut_between_records_only(book: RuleBook, tmp_path: Path) -> None:
    """Quoted names with newlines and commas, CRLF line ends, blocks of 64 KB: every record
    is read whole, with its own row number."""
    path = tmp_path / "long.csv"
    lines = ["奖补编号,项目,统一社会信用代码,单位名称,奖补金额,下达日期,认定日期"]
    for i in range(3000):
        name = f'"某某""大学""\r\n第{i}分部, 上海"'
        lines.append(
            f"B{i},ipa2022-art10-2,123100004250061179,{name},100000.00,2023-03-10,2023-03-01"
        )
    lines.append("B3000,ipa2022-art10-2,123100004250061179,末行,abc,2023-03-10,2023-03-01")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    result = run_audit(book, path, options=AuditOptions(chunk_rows=50))
    assert result.meta["rows_read"] == 3001
    rest = found(result) - {(None, None, "pool_exceeded", "fund_total", 24552800000)}
    rest = {f for f in rest if f[2] != "funded_twice"}  # one unit, 3,000 one-off awards
    assert rest == {(3002, "B3000", "unreadable_amount", None, None)}  # 3000 × 10万 > 第三条's fund


def test_csv_progress_follows_the_bytes_read(tmp_path: Path) -> None:
    """Each chunk moves the progress to the share of the file read so far: it grows, is below
    1 until the end (the bar must not sit at 99% for the whole run), and ends at 1."""
    from service.audit.readers import read_csv

    path = tmp_path / "many.csv"
    lines = ["奖补编号,项目,奖补金额"] + [f"A{i:05d},ipa2022-art10-2,{i}.00" for i in range(20000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = read_csv(path, chunk_rows=3000)
    seen, rows = [], 0
    for chunk in table.chunks:
        seen.append(table.progress["done"])
        rows += chunk.height
    assert rows == 20000 and len(seen) > 4
    assert seen == sorted(seen) and seen[0] < 0.2 and seen[-2] < 1.0
    assert table.progress["done"] == 1.0


def test_csv_with_a_stray_byte_past_the_sample(tmp_path: Path) -> None:
    """A UTF-8 file with one byte that is not (after the sample the encoding is told from):
    every row is read, that cell with a replacement character, the other blocks as they are."""
    from service.audit.readers import read_csv

    path = tmp_path / "stray.csv"
    lines = [f"A{i:05d},ipa2022-art10-2,单位{i}".encode() for i in range(20000)]
    lines[15000] = "A15000,ipa2022-art10-2,单位".encode() + b"\xff"
    path.write_bytes("奖补编号,项目,单位名称\n".encode() + b"\n".join(lines) + b"\n")
    table = read_csv(path, chunk_rows=3000)
    names = pl.concat(list(table.chunks))["单位名称"]
    assert names.len() == 20000 and names[15000] == "单位\ufffd"
    assert names[14999] == "单位14999" and names[15001] == "单位15001"


@pytest.mark.parametrize("seed", range(12))
def test_csv_blocks_read_as_the_whole_file(tmp_path: Path, seed: int) -> None:
    """Blocks of a CSV end anywhere in a record (some records quoted, ragged, blank, CRLF or
    not, the last with or without its line end): read block by block, the rows are those of
    the whole file read at once, numbered as a spreadsheet numbers them."""
    from service.audit.readers import read_csv

    rng = random.Random(seed)
    eol = "\r\n" if seed % 2 else "\n"
    lines = ["a,b,c"]
    for i in range(6000):
        fields = [f"{i}", "x" * rng.randrange(0, 40), rng.choice(["是", "", "  "])]
        if rng.random() < 0.01:
            fields[1] = '"q, ""' + fields[1] + '"'  # quoted, a comma and a quote inside
        if rng.random() < 0.01:
            fields = fields[: rng.randrange(1, 3)]  # ragged: fewer fields
        lines.append(",".join(fields))
    text = eol.join(lines) + (eol if seed % 3 else "")
    path = tmp_path / "blocks.csv"
    path.write_bytes(text.encode("utf-8"))
    whole = pl.read_csv(
        path, infer_schema=False, truncate_ragged_lines=True, encoding="utf8"
    ).with_row_index("row", offset=2)
    table = read_csv(path, chunk_rows=rng.choice([1, 100, 1000]))
    chunks = list(table.chunks)
    assert len(chunks) > 1
    got = pl.concat(chunks)
    assert got.height == 6000
    assert got.equals(whole.with_columns(pl.col("row").cast(pl.Int64)))


def test_allocator_keeps_freed_pages_unless_the_operator_says_otherwise() -> None:
    """The audit sets polars' allocator before polars loads (polars adds its defaults in front,
    and the last setting wins); an operator's own setting is kept. polars' default inherited
    from a parent process that imported polars (this one) is not an operator's setting."""
    import os
    import subprocess
    import sys

    from service.audit._allocator import DECAY, POLARS_DEFAULT

    def setting(value: str | None) -> str:
        script = "import service.audit, os; print(os.environ['_RJEM_MALLOC_CONF'])"
        env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
        if value is not None:
            env["_RJEM_MALLOC_CONF"] = value
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
        return run.stdout.decode().strip()

    assert os.environ["_RJEM_MALLOC_CONF"].startswith(POLARS_DEFAULT)  # polars set it here
    assert setting(None).endswith(DECAY)
    assert setting(os.environ["_RJEM_MALLOC_CONF"]).endswith(DECAY)
    assert setting(f"{POLARS_DEFAULT},{POLARS_DEFAULT}").endswith(DECAY)  # a grandchild
    assert setting("dirty_decay_ms:0").endswith(",dirty_decay_ms:0")
    assert DECAY not in setting("dirty_decay_ms:0")
    assert setting(f"{POLARS_DEFAULT},dirty_decay_ms:0").endswith(",dirty_decay_ms:0")


def test_soft_and_per_district_quotas(book: RuleBook, tmp_path: Path) -> None:
    """第十三条 funds about 10 units a round (a soft quota: one warning per round, with how many
    more); 第十二条（二） one per district a round (the later units are findings, by date of
    award then file order). An applicant funded twice in a round is one unit; an award with no
    district is not counted against a district."""
    from service.schemas.identifiers import uscc_check_char

    def uscc(i: int) -> str:
        first = f"91310000MA{i:07d}"
        return first + uscc_check_char(first)

    rows = [
        "program_id,award_id,applicant_uscc,applicant_name,awarded_amount,awarded_on,round,district"
    ]
    soft = [("R1", i) for i in range(12)] + [("R1", 0)] + [("R2", i) for i in range(10)]
    for n, (rnd, i) in enumerate(soft):
        rows.append(
            f"ipa2022-art13,S{n},{uscc(i)},单位{i},500000.00,2023-04-{1 + n % 28:02d},{rnd},"
        )
    supermarkets = [
        ("M0", 100, "2023-05-02", "R1", "pudong"),
        ("M1", 101, "2023-05-01", "R1", "pudong"),  # earlier: the first in pudong
        ("M2", 102, "2023-05-01", "R1", "xuhui"),
        ("M3", 103, "2023-05-03", "R1", ""),  # no district: not counted
        ("M4", 104, "2023-05-04", "R2", "pudong"),  # another round
        ("M5", 105, "2023-05-05", "R1", "pudong"),
    ]
    for award, i, day, rnd, district in supermarkets:
        rows.append(f"ipa2022-art12-2,{award},{uscc(i)},超市{i},100000.00,{day},{rnd},{district}")
    path = tmp_path / "quotas.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    findings = run_audit(book, path).findings
    quota = findings.filter(pl.col("kind").is_in(["quota_exceeded", "soft_quota_exceeded"]))
    # Units are named by the row of their first award (the header is row 1; M0 is row 25).
    got = sorted(quota.select("kind", "program_id", "row", "amount_at_stake").iter_rows())
    assert got == [
        ("quota_exceeded", "ipa2022-art12-2", 25, 10000000),  # M0
        ("quota_exceeded", "ipa2022-art12-2", 30, 10000000),  # M5
        ("soft_quota_exceeded", "ipa2022-art13", None, None),
    ]
    (warning,) = quota.filter(pl.col("kind") == "soft_quota_exceeded").iter_rows(named=True)
    assert "（多2家）" in warning["message_zh"] and "(2 more)" in warning["message_en"]
    assert warning["article"] == "第十三条" and warning["severity"] == "warning"
    m5 = quota.filter(pl.col("row") == 30).row(0, named=True)
    assert "本轮第3家" in m5["message_zh"] and m5["rule"] == "quota"


def test_a_quota_names_units_in_the_order_their_applications_were_received(
    book: RuleBook, tmp_path: Path
) -> None:
    """第十条（一）: one agency. Where the awards say when each application was received
    (申报时间), the unit received later is the one over the quota, as allocation would have
    named it, although its award is dated earlier (service/quotas.py); a unit with no time
    comes after those with one, whatever its award date."""
    from service.schemas.identifiers import uscc_check_char

    def uscc(i: int) -> str:
        first = f"91310000MA{i:07d}"
        return first + uscc_check_char(first)

    rows = ["项目,奖补编号,统一社会信用代码,单位名称,奖补金额,下达日期,轮次,申报时间"]
    for award, i, awarded, received in [
        ("Q1", 1, "2023-05-01", "2023-03-02T10:00:00+08:00"),  # awarded first, received later
        ("Q2", 2, "2023-05-02", "2023-03-01T10:00:00+08:00"),  # received first: within the quota
        ("Q3", 3, "2023-04-01", ""),  # no time: last
    ]:
        rows.append(f"ipa2022-art10-1,{award},{uscc(i)},机构{i},300000.00,{awarded},R1,{received}")
    path = tmp_path / "received.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    findings = run_audit(book, path).findings.filter(pl.col("kind") == "quota_exceeded")
    # Units are named by the row of their first award (the header is row 1: Q1 is row 2).
    got = sorted(findings.select("row", "message_en").iter_rows())
    assert [(row, m.split(" funded")[0]) for row, m in got] == [
        (2, "Unit no. 2"),
        (4, "Unit no. 3"),
    ]

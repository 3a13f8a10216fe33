"""Tables as the bureau publishes them: programs by their Chinese names, 万元, a 合计 row, rows
that cover a whole article (a family), and names never copied from the rule files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from service.audit.context import AuditContext
from service.audit.names import ProgramNames, normalise
from service.audit.run import run_audit
from service.rules.loader import RuleBook

FIXTURES = Path(__file__).parent / "audit_fixtures"
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
WAN = 1_000_000  # fen in one 万元


@pytest.mark.parametrize(
    ("cell", "program_id"),
    [
        ("ipa2022-art19", "ipa2022-art19"),
        ("商业银行专利商标质押绩效奖补", "ipa2022-art20"),  # the catalogue's title as it is
        ("2023年上海市高校知识产权运营中心建设项目", "ipa2022-art06"),
        ("上海市 医疗卫生系统知识产权运营中心（建设）", "ipa2022-art07"),
        ("先导产业知识产权运营促进中心建设项目", "ipa2022-art08"),
        ("专利开放许可试点-专利超市项目", "ipa2022-art12-2"),  # 第五条's spelling
        ("专利开放许可试点——公共专利墙", "ipa2022-art12-1"),
        ("2022年度高校院所知识产权运营绩效奖补项目", "ipa2022-art19"),  # a yearly report's
        ("上海市商业银行知识产权运营绩效奖补项目", "ipa2022-art20"),
        ("服务机构专利许可转让托管绩效奖补（2022年）", "ipa2022-art21"),
        ("知识产权金融创新中心评定", "ipa2022-art09"),  # a family: 第九条（一）–（三）
        ("上海市知识产权地方标准制定项目", "ipa2022-art10"),
        ("《高价值专利升级培育工作规范》地方标准制定", "ipa2022-art10-2"),
        ("科创板拟上市企业知识产权状况分析应用项目", "ipa2022-art18"),
        ("２０２３年 高价值专利升级培育项目", "ipa2022-art14"),  # full-width digits
        ("2023年概念验证中心", "stcsm2023-concept-verification"),
        ("2022年技术转移示范机构", "stcsm2022-tech-transfer"),
    ],
)
def test_program_names_as_bureaus_write_them(book: RuleBook, cell: str, program_id: str) -> None:
    found = ProgramNames(book).match(cell)
    assert found.id == program_id, found


def test_a_name_matching_none_lists_the_closest(book: RuleBook) -> None:
    found = ProgramNames(book).match("上海市知识产权运营促进中心")
    assert found.id is None and not found.ambiguous
    assert found.candidates[0] == "ipa2022-art08"


def test_a_year_that_contradicts_the_guide_year_is_not_guessed(book: RuleBook) -> None:
    found = ProgramNames(book).match("2023年技术转移示范机构")  # 2022's title, 2023's year
    assert found.id is None and "stcsm2022-tech-transfer" in found.candidates


def test_normalised_names_tell_every_program_apart(book: RuleBook) -> None:
    names = ProgramNames(book)
    for program in book.programs.values():
        assert names.match(program.title_zh).id == program.id
        for name in program.names:
            assert names.match(name).id == program.id
    assert normalise("（2023年度）上海市 XX 项目") == "xx"


def test_a_published_spending_table(book: RuleBook) -> None:
    """序号 / 项目名称 / 认定部门 / 支持数量/个 / 支出金额/万元, a family row and a 合计 row."""
    result = run_audit(book, FIXTURES / "published_zh.csv")
    assert result.meta["level"] == "program_summary"
    got = {
        (r["row"], r["program_id"], r["kind"], r["amount_at_stake"])
        for r in result.findings.iter_rows(named=True)
    }
    assert got == {
        # 第六条: 不超过10所; 11 paid 800万, at most 80万 each: the total itself could be made.
        (2, "ipa2022-art06", "quota_exceeded", 0),
        # 第九条 as a family: 1 × 30万 (保险) + 1 × 20万 (担保) + 8 × 10万 (信贷) = 130万 at most.
        (3, "ipa2022-art09", "summary_not_composable", 20 * WAN),
        # 第十条 as a family: three standards, one each, 30 + 10 + 10 = 50万: clean.
        # Not a program of the rules: the closest are named, the whole total is at stake.
        (7, "上海市知识产权运营促进中心", "unknown_program", 100 * WAN),
        # 合计 says 1650万; the rows add up to 1600万.
        (8, None, "total_mismatch", 50 * WAN),
    }
    unknown = result.findings.filter(kind="unknown_program").row(0, named=True)
    assert "ipa2022-art08" in unknown["message_zh"] and "先导产业" in unknown["message_zh"]
    assert not result.findings.filter(kind="unknown_column").height  # 序号, 认定部门
    programs = {r["program_id"]: r for r in result.programs.iter_rows(named=True)}
    assert programs["ipa2022-art09"]["allowed"] == 130 * WAN
    assert programs["ipa2022-art10"]["known"] and programs["ipa2022-art20"]["known"]
    assert programs["ipa2022-art06"]["notes"] == "认定部门：市知识产权局、市教委"  # kept


@pytest.mark.parametrize(
    ("units", "total_wan", "kind"),
    [
        (3, 50, None),  # one of each standard
        (2, 40, None),  # 30 + 10
        (2, 30, "summary_not_composable"),  # 10 + 10 is 20, 30 + 10 is 40: never 30
        (4, 60, "quota_exceeded"),  # three standards, one each: a fourth has no program
    ],
)
def test_a_family_of_fixed_amounts(
    book: RuleBook, tmp_path: Path, units: int, total_wan: int, kind: str | None
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        f"项目名称,支持数量（个）,支出金额(万元)\n知识产权地方标准制定,{units},{total_wan}\n"
    )
    kinds = set(run_audit(book, path).findings["kind"])
    assert kinds == ({kind} if kind else set())


def test_a_family_far_above_its_planned_numbers_is_a_warning(
    book: RuleBook, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("项目名称,支持数量/个,支出金额/万元\n知识产权金融创新中心,14,100\n")
    found = run_audit(book, path).findings
    assert set(found["kind"]) == {"soft_quota_exceeded"}
    assert found["severity"].to_list() == ["warning"]


def test_a_program_name_in_an_award_file(book: RuleBook, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "奖补编号,项目名称,统一社会信用代码,奖补金额/万元\n"
        "A1,2023年高校知识产权运营中心建设项目,123100004250061179,90\n"
        "A2,知识产权金融创新中心,123100004250061179,10\n"
    )
    found = run_audit(book, path).findings
    by_row = {r["row"]: r for r in found.iter_rows(named=True)}
    assert by_row[2]["program_id"] == "ipa2022-art06" and by_row[2]["kind"] == "above_cap"
    # An award names one program: the family's name lists them, and nothing is guessed.
    assert by_row[3]["kind"] == "unknown_program" and "ipa2022-art09-2" in by_row[3]["message_zh"]


def test_context_matches_each_cell_once(book: RuleBook) -> None:
    ctx = AuditContext(book, frozenset())
    assert ctx.match("商业银行专利商标质押绩效奖补") is ctx.match("商业银行专利商标质押绩效奖补")


def test_money_at_stake_is_never_counted_twice(book: RuleBook, tmp_path: Path) -> None:
    """An award above its cap and ineligible puts its amount at stake, not more; the report's
    total is at most what was paid."""
    from service.audit.report import summary_json

    path = tmp_path / "a.csv"
    path.write_text(
        "award_id,program_id,applicant_uscc,applicant.entity_type,awarded_amount\n"
        "A1,ipa2022-art06,123100004250061179,enterprise,850000.00\n"
    )
    result = run_audit(book, path)
    kinds = dict(zip(result.findings["kind"], result.findings["amount_at_stake"], strict=True))
    assert kinds["above_cap"] == 5_000_000 and kinds["ineligible_applicant"] == 85_000_000
    assert summary_json(book, result)["amount_at_stake"] == "850000.00"

    summary = tmp_path / "s.csv"  # 第十条（一）: one standard, 30万 fixed; two paid 70万
    summary.write_text("项目,单位数,奖补总额（万元）\nipa2022-art10-1,2,70\n")
    result = run_audit(book, summary)
    assert set(result.findings["kind"]) == {"summary_not_composable", "quota_exceeded"}
    assert sum(result.findings["amount_at_stake"].drop_nulls()) == 50 * WAN  # 10万 + 40万
    assert summary_json(book, result)["amount_at_stake"] == "400000.00"  # the larger reading


def test_a_total_row_in_an_award_file(book: RuleBook, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "序号,项目名称,统一社会信用代码,奖补金额/万元\n"
        "1,高校知识产权运营中心建设,123100004250061179,80\n"
        "2,高价值专利培育中心建设,91310000MA1FL0001R,50\n"
        "合计,,,120\n"
    )
    found = run_audit(book, path).findings
    mismatch = found.filter(kind="total_mismatch").row(0, named=True)
    assert mismatch["row"] == 4 and mismatch["amount_at_stake"] == 10 * WAN
    assert (
        not found.filter(kind="unknown_program").height
        and not found.filter(row=4, kind="missing_value").height
    )


def test_one_award_per_unit(book: RuleBook, tmp_path: Path) -> None:
    """第六条: 一次性予以每家 — the same university paid twice is a finding; so is a second
    award of the same stcsm guide year (表注4). Another program, or another guide year, is not."""
    path = tmp_path / "a.csv"
    uni, other = "123100004250061179", "91310000MA1FL0001R"
    path.write_text(
        "award_id,program_id,applicant_uscc,awarded_amount,awarded_on\n"
        f"A1,ipa2022-art06,{uni},400000.00,2023-03-01\n"
        f"A2,ipa2022-art06,{uni},300000.00,2023-09-01\n"
        f"A3,ipa2022-art06,{other},300000.00,2023-09-01\n"
        f"A4,ipa2022-art13,{uni},300000.00,2023-09-01\n"
        f"S1,stcsm2023-tech-transfer,{other},500000.00,2023-12-01\n"
        f"S2,stcsm2023-tech-transfer,{other},200000.00,2023-12-20\n"
        f"S3,stcsm2022-tech-transfer,{other},200000.00,2022-12-20\n"
        f"S4,stcsm2023-open-innovation,{other},200000.00,2023-12-21\n"
    )
    twice = run_audit(book, path).findings.filter(kind="funded_twice")
    got = {
        (r["award_id"], r["rule"], r["article"], r["amount_at_stake"])
        for r in twice.iter_rows(named=True)
    }
    assert got == {
        ("A2", "one-award-per-unit", "第六条", 30_000_000),
        ("S2", "one-application-per-guide-year", "四（一）注4", 20_000_000),
        ("S4", "one-application-per-guide-year", "四（一）注4", 20_000_000),  # the same year
    }, got


def test_every_sheet_of_a_workbook(book: RuleBook, tmp_path: Path) -> None:
    """Awards on one sheet, their details on another (recognised by their headers), and a
    sheet of notes named in the report as not audited: the same findings as the two files."""
    import csv

    import openpyxl

    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "填表说明"
    notes.append(["说明"])
    notes.append(["金额单位：元"])
    for title, name in (("奖补", "awards_en.csv"), ("明细", "items_en.csv")):
        sheet = workbook.create_sheet(title)
        with (FIXTURES / name).open(encoding="utf-8") as fh:
            for record in csv.reader(fh):
                sheet.append(record)
    path = tmp_path / "book.xlsx"
    workbook.save(path)

    both = run_audit(book, FIXTURES / "awards_en.csv", FIXTURES / "items_en.csv")
    sheets = run_audit(book, path)
    skipped = sheets.findings.filter(kind="sheet_not_audited")
    assert skipped["item"].to_list() == ["填表说明"] and skipped["severity"].to_list() == [
        "warning"
    ]

    def key(frame):
        return sorted(frame.drop("source", "message_zh", "message_en").rows())

    assert key(sheets.findings.filter(kind="sheet_not_audited").clear()) == []
    assert key(sheets.findings.filter(pl.col("kind") != "sheet_not_audited")) == key(both.findings)


def test_a_tranche_paid_above_the_plan(book: RuleBook, tmp_path: Path) -> None:
    """stcsm 2023 concept verification, 3 years, 5,000,000.00: 60% in the year of approval is
    3,000,000.00 (also the first-year cap), 20% at mid-term, the rest after acceptance."""
    import json

    import yaml

    example = yaml.safe_load(
        (RULES_DIR / "stcsm/examples/stcsm2023-concept-verification.yaml").read_text("utf-8")
    )
    body = {
        **example["value"],
        "requested_amount": "5000000.00",
        "self_funds": "10000000.00",
        "duration_years": 3,
    }
    uscc = body["applicant"]["uscc"]
    cell = json.dumps(body, ensure_ascii=False).replace('"', '""')
    path = tmp_path / "a.csv"
    path.write_text(
        "award_id,program_id,applicant_uscc,awarded_amount,首期拨付,中期拨付,验收后拨付,application\n"
        f'T1,stcsm2023-concept-verification,{uscc},5000000.00,3000000.00,1000000.00,1000000.00,"{cell}"\n'
        f'T2,stcsm2023-concept-verification,{uscc},5000000.00,3500000.00,500000.00,1000000.00,"{cell}"\n',
        encoding="utf-8",
    )
    found = run_audit(book, path).findings.filter(kind="tranche_above_plan")
    got = [(r["award_id"], r["rule"], r["amount_at_stake"]) for r in found.iter_rows(named=True)]
    assert got == [("T2", "tranche-first-year", 50_000_000)], got

"""Cells to typed columns, exactly: money to the fen without floats, 万元, dates, identifiers."""

from __future__ import annotations

import random

import polars as pl
import pytest

from service.audit.columns import recognise
from service.audit.parse import date_int, datetime_int, flag, money_fen, patent_number, uscc
from service.audit.readers import cell_text
from service.rules.loader import RuleBook


def cells(values: list[str | None], expr: pl.Expr) -> list[object]:
    return pl.DataFrame({"c": values}, schema={"c": pl.String()}).select(expr).to_series().to_list()


def test_money_to_the_fen_never_through_float() -> None:
    values = [
        "0.29",
        "1,234.5",
        "￥1500",
        "999999999999999.99",
        "0.001",
        "-1",
        "1.5e3",
        "NaN",
        " 12 ",
    ]
    got = cells(values, money_fen(pl.col("c")))
    # 0.29 * 100 is 28.999999999999996 in floating point: the digits are split instead.
    assert got == [29, 123450, 150000, 99999999999999999, None, None, None, None, 1200]


def test_wan_yuan_columns_scale_exactly() -> None:
    got = cells(["0.45", "85", "0.000001", "0.0000001", "300.15"], money_fen(pl.col("c"), wan=True))
    assert got == [450000, 85000000, 1, None, 300150000]


def test_dates_in_the_forms_spreadsheets_use() -> None:
    values = [
        "2023-01-05",
        "2023/1/5",
        "2023年1月5日",
        "20230105",
        "2023-01-05 00:00:00",
        "2023-02-29",
        "x",
    ]
    assert cells(values, date_int(pl.col("c"))) == [20230105] * 5 + [None, None]


def test_timestamps_in_shanghai_time() -> None:
    values = [
        "2023-01-05T10:00:00+08:00",
        "2023-01-05T02:00:00Z",
        "2023-01-05 10:00:00",
        "2023-01-05T10:00:00.999+08:00",
    ]
    assert cells(values, datetime_int(pl.col("c"))) == [20230105100000] * 4


def test_flags_in_chinese_and_english() -> None:
    assert cells(["是", "否", "TRUE", "0", "√", "maybe"], flag(pl.col("c"))) == [
        True,
        False,
        True,
        False,
        True,
        None,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("123100004250061179", "123100004250061179"), ("91310000ma1fl9y9y8", "91310000MA1FL9Y9Y8"),
     ("91310000MA1FL9Y9Y9", None), ("91310000MA1FL9Y9Y", None), ("91310000MA1FL9Y9YI", None)],
)  # fmt: skip
def test_uscc_check_character(value: str, expected: str | None) -> None:
    assert cells([value], uscc(pl.col("c"))) == [expected]


def test_patent_numbers_in_canonical_form() -> None:
    values = [
        "ZL201510906090.5",
        "CN2015109060905",
        "zl201510906090.5",
        "201510906090.4",
        "12345678.9",
        "x",
        None,
    ]
    got = patent_number(pl.Series(values, dtype=pl.String())).to_list()
    assert got == ["2015109060905"] * 3 + [None, "123456789", None, None]


def test_excel_cells_as_excel_shows_them() -> None:
    assert cell_text(0.1 + 0.2) == "0.30000000000000004"  # refused as money: not two decimals
    assert (
        cell_text(1500.1) == "1500.1" and cell_text(1500.0) == "1500" and cell_text(True) == "true"
    )


@pytest.mark.parametrize(
    ("header", "key", "wan"),
    [("奖补金额（万元）", "awarded_amount", True), ("奖补金额(元)", "awarded_amount", False),
     ("awarded_amount_wan", "awarded_amount", True), ("Awarded amount (10k yuan)", "awarded_amount", True),
     ("奖补金额/万元", "awarded_amount", True), ("项目", "program_id", False),
     ("单位类型", "applicant__entity_type", False), ("item.patent_number", "patent_number", False),
     ("requested_amount [万元]", "requested_amount", True)],
)  # fmt: skip
def test_headers_in_english_or_chinese_with_units(
    book: RuleBook, header: str, key: str, wan: bool
) -> None:
    column = recognise(header, book)
    assert column is not None and (column.key, column.wan) == (key, wan)
    assert recognise("颜色", book) is None


SHAPES: dict[str, list[str | None]] = {
    "奖补金额": ["1500.00", "1,234.5", "￥1500", "0.001", " 12 ", "1.5e3", "-1", "12.3", None, ""],
    "申请金额（万元）": ["0.45", "85", "0.000001", "0.0000001", "300.15", "x", None],
    "下达日期": ["2023-04-10", "2023/1/5", "2023年1月5日", "20230105", "2023-02-29", "x", None],
    "申报时间": ["2023-03-01T10:00:00+08:00", "2023-01-05 10:00:00", "2023-01-05T02:00:00Z", "x"],
    "注册在本市": ["是", "否", "TRUE", "0", "√", "maybe", " 是 ", None],
    "单位类型": ["enterprise", "高校", "University", "other", "alien", None],
    "统一社会信用代码": ["91310000MA1FL9Y9Y8", "91310000ma1fl9y9y8", "91310000MA1FL9Y9Y9", None],
    "专利号": [
        "ZL201510906090.5",
        "CN2015109060905",
        "201510906090.4",
        "12345678.9",
        "x",
        None,
        "ZL201510906006.X",
        "ZL201510906006.0",
        "ZL201510906090.4",
        "ZL2015109060-0.5",
        "ZL20151090609.5",
        "ZL201510906090,5",
        "zl201510906090.5",
        "ZL000000000000.0",
    ],
    "项目": ["ipa2022-art19", " ipa2022-art20 ", "  ", None],
    "单位名称": ["甲大学", " 乙大学 ", "丙\u3000", "\t丁"],  # text with no blank cell
    "执行期": ["2", "3.0", "x", None],
}


@pytest.mark.parametrize("blank_share", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("distinct", [False, True])
def test_parse_reads_every_cell_as_the_general_expression(
    book: RuleBook, blank_share: float, distinct: bool
) -> None:
    """Large columns are read by quicker paths (common shapes, distinct values, blank cells
    skipped); each must give every cell exactly what the general expression gives it."""
    from service.audit.parse import Memo, parse, problem_of, typed

    n = 6000
    rng = random.Random(7)
    data: dict[str, list[str | None]] = {}
    for header, shapes in SHAPES.items():
        column: list[str | None] = []
        for i in range(n):
            if rng.random() < blank_share:
                column.append(None)
                continue
            # The first rows have some shapes only: the others are new to a later chunk.
            value = rng.choice(shapes if i >= 2100 else shapes[: len(shapes) // 2 + 1])
            if distinct and value is not None and header.startswith(("奖补金额", "申请金额")):
                value = f"{i}.{i % 100:02d}" if rng.random() < 0.8 else value
            column.append(value)
        data[header] = column
    raw = pl.DataFrame(
        {"row": range(2, n + 2), **data}, schema_overrides=dict.fromkeys(data, pl.String())
    )
    columns = [c for h in data if (c := recognise(h, book)) is not None]
    assert len(columns) == len(SHAPES)
    parsed = parse(raw, columns)
    for c in columns:
        if c.key == "patent_number":
            expected = patent_number(raw[c.header])
        else:
            expected = raw.select(typed(c)).to_series()
        assert parsed.frame[c.key].to_list() == expected.to_list(), c.header
        filled = raw[c.header].str.strip_chars().fill_null("") != ""
        bad = raw.filter(filled & expected.is_null())
        got = parsed.problems.filter(pl.col("column") == c.header)
        assert got["row"].to_list() == bad["row"].to_list(), c.header
        assert set(got["problem"]) <= {problem_of(c)}
    # Read in chunks, values remembered from chunk to chunk (a run's memo): the same cells.
    memo: Memo = {}
    chunks = [
        parse(raw.slice(a, b - a), columns, memo) for a, b in ((0, 2100), (2100, 4200), (4200, n))
    ]
    assert pl.concat([c.frame for c in chunks]).equals(parsed.frame)
    by = ["column", "row"]
    assert pl.concat([c.problems for c in chunks]).sort(by).equals(parsed.problems.sort(by))

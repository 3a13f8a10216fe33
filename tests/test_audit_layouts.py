"""The two ways an audit reads its files give the same findings: side by side in batches of
whole awards when the files are in award order (as bureaus export them), in partitions on disk
otherwise, and falling back from the first to the second when a file turns out of order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.audit.context import AuditOptions
from service.audit.ordered import NotInOrder, batches
from service.audit.run import AuditResult, run_audit
from service.rules.loader import RuleBook
from tests.conftest import DISQUALIFIED_USCC

FIXTURES = Path(__file__).parent / "audit_fixtures"
CASES = [
    ("awards_zh.csv", None),  # an award's items on its continuation rows
    ("awards_zh.xlsx", None),
    ("awards_en.csv", "items_en.csv"),  # a detail file, with an orphan item at its end
    ("awards.jsonl", None),  # applications with their items
]


def audit(book: RuleBook, records: Path, details: Path | None, **options: object) -> AuditResult:
    return run_audit(
        book,
        records,
        details,
        disqualified={DISQUALIFIED_USCC},
        options=AuditOptions(**options),  # type: ignore[arg-type]
    )


def same(a: AuditResult, b: AuditResult) -> None:
    assert a.findings.height > 0
    assert a.findings.equals(b.findings)  # every column, in the same (total) order
    assert a.programs.equals(b.programs)


@pytest.mark.parametrize(("records", "details"), CASES)
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
def test_award_order_and_partitions_agree(
    book: RuleBook, records: str, details: str | None, chunk_rows: int
) -> None:
    """In award order, batches of whole awards as they come; in partitions, every award's
    rows gathered on disk first: the findings are the same."""
    files = (FIXTURES / records, FIXTURES / details if details else None)
    ordered = audit(book, *files, chunk_rows=chunk_rows)
    assert ordered.meta["layout"] == "award_order"
    partitioned = audit(
        book, *files, chunk_rows=chunk_rows, layout="partitions", partition_bytes=300
    )
    assert partitioned.meta["layout"] == "partitions" and partitioned.meta["partitions"] > 1
    same(ordered, partitioned)


def _lines(name: str) -> tuple[str, list[str]]:
    header, *rows = (FIXTURES / name).read_text("utf-8").splitlines()
    return header, rows


def _without_ids(name: str, folder: Path) -> Path:
    """A fixture with its first column (the award id) taken out."""
    header, rows = _lines(name)
    path = folder / f"no_ids_{name}"
    path.write_text("\n".join(line.split(",", 1)[1] for line in [header, *rows]) + "\n", "utf-8")
    return path


def _falls_back(
    book: RuleBook, records: Path, details: Path | None, chunk_rows: int
) -> set[tuple[object, ...]]:
    """Audits files found out of order on the way: the result is the partitioned audit's.
    Returns the (award, kind) of its findings."""
    result = audit(book, records, details, chunk_rows=chunk_rows)
    assert result.meta["layout"] == "partitions"
    same(result, audit(book, records, details, chunk_rows=chunk_rows, layout="partitions"))
    return set(result.findings.select("award_id", "kind").iter_rows())


@pytest.mark.parametrize("where", ["early", "last"])
def test_a_file_out_of_order_is_audited_in_partitions(
    book: RuleBook, tmp_path: Path, where: str
) -> None:
    """An item of E1 moved after E2's, or to the end of the detail file: found on the second
    chunk, or only at the last one, after batches were evaluated; either way the audit starts
    again in partitions and finds what an audit in partitions finds."""
    header, rows = _lines("items_en.csv")
    moved = rows[1:4] + rows[:1] + rows[4:] if where == "early" else rows[1:] + rows[:1]
    items = tmp_path / "items.csv"
    items.write_text("\n".join([header, *moved]) + "\n", encoding="utf-8")
    found = _falls_back(book, FIXTURES / "awards_en.csv", items, chunk_rows=2)
    # The moved loan is still E1's: outside its window, as in the file in order.
    assert ("E1", "item_outside_window") in found


def test_awards_without_ids_are_in_order(book: RuleBook, tmp_path: Path) -> None:
    """A file with no award ids: each row is an award of its own, read in batches."""
    path = _without_ids("awards_zh.csv", tmp_path)
    ordered = audit(book, path, None, chunk_rows=2)
    assert ordered.meta["layout"] == "award_order"
    same(ordered, audit(book, path, None, chunk_rows=2, layout="partitions"))


def _chunks(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, size):
        yield frame.slice(start, size)


def _file(ids: list[str | None], name: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"row": range(len(ids)), "id": ids, "file": [name] * len(ids)},
        schema={"row": pl.Int64(), "id": pl.String(), "file": pl.String()},
    )


award_ids = st.lists(st.sampled_from(["A1", "A2", "B", "B1", "C", " C ", "", None]), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    awards=award_ids,
    items=award_ids,
    award_chunk=st.integers(1, 7),
    item_chunk=st.integers(1, 7),
)
def test_batches_hold_whole_awards(
    awards: list[str | None], items: list[str | None], award_chunk: int, item_chunk: int
) -> None:
    """Any two files sorted by award id, cut into any chunks: the batches give back every row
    once, in file order, and all rows and items of an award (ids compared without surrounding
    blanks; blank ids are awards of their own) are in the same batch."""

    def key(i: str | None) -> str:
        return (i or "").strip()

    awards, items = sorted(awards, key=key), sorted(items, key=key)
    a, b = _file(awards, "awards"), _file(items, "items")
    seen = lambda raw: "id"  # noqa: E731
    out = list(
        batches(("awards", _chunks(a, award_chunk), seen), ("items", _chunks(b, item_chunk), seen))
    )
    records = [pl.concat(x.records) if x.records else a.clear() for x in out]
    details = [pl.concat(x.items) if x.items else b.clear() for x in out]
    assert pl.concat([a.clear(), *records]).equals(a)
    assert pl.concat([b.clear(), *details]).equals(b)
    assert not any(x.last for x in out[:-1])  # a batch said to be the last is
    home: dict[str, int] = {}
    for number, batch in enumerate(zip(records, details, strict=True)):
        for frame in batch:
            for award in frame["id"].to_list():
                if key(award):
                    assert home.setdefault(key(award), number) == number


def test_batches_refuse_ids_that_go_down() -> None:
    a = _file(["A1", "A2", "A3", "A0"], "awards")
    with pytest.raises(NotInOrder):
        list(batches(("awards", _chunks(a, 3), lambda raw: "id"), None))


def test_an_item_column_first_seen_late_in_json_lines(book: RuleBook, tmp_path: Path) -> None:
    """JSON Lines name their columns line by line: an item column first seen after the
    first lines (and chunks) would not have been known to the awards already evaluated, so
    the audit starts again in partitions, where every column is known before evaluating."""
    award = (
        '"program_id": "ipa2022-art10-2", "applicant_uscc": "123100004250061179", '
        '"awarded_amount": "100000.00", "awarded_on": "2023-03-10", "recognised_on": "2023-03-01"'
    )
    lines = [f'{{"award_id": "A{i:03d}", {award}}}' for i in range(250)]
    lines.append(
        '{"award_id": "A999", "program_id": "ipa2022-art19", '
        '"applicant_uscc": "123100004250061179", "awarded_amount": "3000.00", '
        '"patent_number": "ZL201510906090.5", "contract_date": "2023-07-01"}'
    )
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert ("A999", "item_outside_window") in _falls_back(book, path, None, chunk_rows=50)


def test_detail_rows_without_award_ids_in_the_award_file(book: RuleBook, tmp_path: Path) -> None:
    """An award file with no award ids and a detail file: every detail row is an orphan, in
    award order as in partitions."""
    path = _without_ids("awards_en.csv", tmp_path)
    items = FIXTURES / "items_en.csv"
    ordered = audit(book, path, items, chunk_rows=2)
    assert ordered.meta["layout"] == "award_order"
    same(ordered, audit(book, path, items, chunk_rows=2, layout="partitions"))
    orphans = ordered.findings.filter(pl.col("kind") == "orphan_item")
    assert orphans.height == len(_lines("items_en.csv")[1])


def test_the_list_is_asked_about_each_applicant_once(book: RuleBook) -> None:
    """The 第二十六条 list may be the database: each applicant is looked up once per run,
    not once per batch and program."""

    class Counting:
        def __init__(self) -> None:
            self.asked: list[object] = []

        def __contains__(self, uscc: object) -> bool:
            self.asked.append(uscc)
            return uscc == DISQUALIFIED_USCC

    listed = Counting()
    result = run_audit(
        book, FIXTURES / "awards_zh.csv", disqualified=listed, options=AuditOptions(chunk_rows=1)
    )
    assert len(listed.asked) == len(set(listed.asked)) > 1
    assert ("Z7", "ineligible_applicant") in set(
        result.findings.select("award_id", "kind").iter_rows()
    )


REPEATED = """奖补编号,项目,统一社会信用代码,单位名称,奖补金额,下达日期,认定日期,单位类型,注册在本市,经营状态,信用状况,申报时间,专利号,合同日期,受让方注册在本市,受让方中小企业,备案登记
{lines}
"""
# Each line of an award repeats its record (as some exports do), with one patent or none.
AWARD_LINES = {
    "R1": [
        "R1,ipa2022-art19,123100004250061179,甲大学,3000.00,2023-03-20,2023-03-01,高校,是,正常,良好,2023-02-01 10:00:00,ZL201510906090.5,2022-08-01,是,是,是",
        "R1,ipa2022-art19,123100004250061179,甲大学,3000.00,2023-03-20,2023-03-01,高校,是,正常,良好,2023-02-01 10:00:00,ZL202210001234.2,2022-09-01,是,是,是",
    ],
    "R2": [
        "R2,ipa2022-art19,123100004250061179,甲大学,1500.00,2023-03-20,2023-03-01,高校,是,正常,良好,2023-02-01 10:00:00,ZL201610906091.4,2022-08-01,是,是,是",
        "R2,ipa2022-art19,123100004250061179,甲大学,1500.00,2023-03-20,2023-03-01,高校,是,正常,良好,2023-02-01 10:00:00,,,,,",
    ],
}


@pytest.mark.parametrize("order", [["R1", "R1", "R2", "R2"], ["R2", "R1", "R2", "R1"]])
def test_an_award_on_several_lines_is_one_award(
    book: RuleBook, tmp_path: Path, order: list[str]
) -> None:
    """R1: two patents, 2 x 1,500 = 3,000 paid, as it should (read as two awards, each would
    be paid 3,000 for one patent). R2: its record on two lines, its one patent on the first:
    1,500 is right (read as two awards, the second would have no patent).
    In award order or not (then audited in partitions), no finding on either."""
    taken = {k: iter(v) for k, v in AWARD_LINES.items()}
    path = tmp_path / "repeated.csv"
    path.write_text(REPEATED.format(lines="\n".join(next(taken[k]) for k in order)), "utf-8")
    result = audit(book, path, None)
    assert result.meta["layout"] == ("award_order" if order == sorted(order) else "partitions")
    assert result.findings.select("award_id", "kind").rows() == []
    assert result.programs.filter(pl.col("program_id") == "ipa2022-art19")["awards"].item() == 2


def test_items_of_awards_interleaved_in_the_detail_file(book: RuleBook, tmp_path: Path) -> None:
    """Detail rows not grouped by award (then audited in partitions): each award's items are
    still taken in file order. A1 lists loan L1 twice, with A2's loan between: the second L1
    (file row 4) is the one not counted, labelled as A1's second loan."""
    awards = tmp_path / "awards.csv"
    header, rows = _lines("awards_en.csv")
    e1 = next(r for r in rows if r.startswith("E1,"))
    awards.write_text("\n".join([header, "A1" + e1[2:], "A2" + e1[2:]]) + "\n", "utf-8")
    items = tmp_path / "items.csv"
    item_header, item_rows = _lines("items_en.csv")
    l1 = next(r for r in item_rows if r.startswith("E1,L1,"))
    lines = [item_header, "A1" + l1[2:], "A2,L9" + l1[5:], "A1" + l1[2:]]
    items.write_text("\n".join(lines) + "\n", "utf-8")
    for layout in ("auto", "partitions"):
        result = audit(book, awards, items, layout=layout)
        assert result.meta["layout"] == "partitions"
        twice = result.findings.filter(pl.col("kind") == "claimed_twice")
        assert twice.select("award_id", "row", "item").rows() == [("A1", 4, "loans[1] L1")]

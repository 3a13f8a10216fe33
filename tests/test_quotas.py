"""Quotas (shared/spec/programs.md, "Quota"): who a round's quota counts and who is beyond it,
in the one ordering (service/quotas.py) that allocation and the audit both use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from service.quotas import LIMIT, PLACE, Unit, check, places
from service.rules.model import QuotaSpec

T0 = datetime(2023, 7, 1, 9, 0, tzinfo=UTC)


def unit(app_id: int, minutes: int = 0, district: str | None = None) -> Unit:
    return Unit(app_id, T0 + timedelta(minutes=minutes), district)


def quota(kind: str, limit: int) -> QuotaSpec:
    return QuotaSpec(
        kind=kind,  # type: ignore[arg-type]
        limit=limit,
        article="第九条",
        zh="测试名额",
        en="test quota",
        district_field="district" if kind == "per_district" else None,
    )


# -- one round (allocation) ------------------------------------------------------------------


def test_a_hard_quota_at_its_limit_passes() -> None:
    result = check(quota("hard", 2), [unit(1), unit(2, 1)])
    assert result.breaches == [] and result.warnings == []


def test_one_over_a_hard_quota_names_the_later_submission_without_choosing() -> None:
    # Application 1 was submitted last: the order is by time, not by id.
    (breach,) = check(quota("hard", 2), [unit(1, 9), unit(2, 0), unit(3, 5)]).breaches
    assert (breach.kind, breach.limit, breach.count) == ("hard", 2, 3)
    assert breach.units == [2, 3, 1]
    assert breach.over == [1]


def test_at_the_same_time_the_lower_id_comes_first() -> None:
    (breach,) = check(quota("hard", 1), [unit(5, 1), unit(4, 1)]).breaches
    assert breach.units == [4, 5] and breach.over == [5]


def test_a_soft_quota_warns_one_over_and_is_silent_at_the_limit() -> None:
    eight = [unit(i, i) for i in range(1, 9)]
    assert check(quota("soft", 8), eight).warnings == []
    result = check(quota("soft", 8), [*eight, unit(9, 9)])
    assert result.breaches == []
    assert [(w.kind, w.limit, w.count) for w in result.warnings] == [("soft", 8, 9)]


def test_one_per_district() -> None:
    fine = [unit(1, 0, "huangpu"), unit(2, 1, "xuhui")]
    assert check(quota("per_district", 1), fine).breaches == []
    crowded = [*fine, unit(3, 2, "huangpu"), unit(4, 3, "jiading")]
    (breach,) = check(quota("per_district", 1), crowded).breaches
    assert (breach.kind, breach.district, breach.units, breach.over) == (
        "per_district",
        "huangpu",
        [1, 3],
        [3],
    )


def test_districts_are_reported_in_name_order() -> None:
    units = [unit(1, 0, "xuhui"), unit(2, 1, "xuhui"), unit(3, 2, "huangpu"), unit(4, 3, "huangpu")]
    result = check(quota("per_district", 1), units)
    assert [(b.district, b.over) for b in result.breaches] == [("huangpu", [4]), ("xuhui", [2])]


def test_a_unit_with_no_district_is_not_counted_against_a_district() -> None:
    units = [unit(1, 0, None), unit(2, 1, None), unit(3, 2, "xuhui")]
    assert check(quota("per_district", 1), units).breaches == []


def test_no_quota_checks_nothing() -> None:
    result = check(None, [unit(i) for i in range(50)])
    assert result.breaches == [] and result.warnings == []
    assert check(quota("hard", 1), []).breaches == []


# -- many programs and rounds at once (the audit) --------------------------------------------


def test_places_of_every_program_round_and_district_at_once() -> None:
    units = pl.DataFrame(
        {
            "program_id": ["a", "a", "a", "b", "b", "b", "c", "a"],
            "round": ["R1", "R1", "R2", "R1", "R1", "R1", "R1", "R1"],
            "district": [None, None, None, "pudong", "pudong", None, None, None],
            "awarded_on": [20230502, 20230501, 20230501, 20230503, 20230501, 20230501, 1, None],
            "src": ["f"] * 8,
            "row": [2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    quotas = {"a": quota("hard", 1), "b": quota("per_district", 1)}
    placed = places(units, quotas, tie=["src", "row"])
    got = placed.select("program_id", "round", "row", PLACE, LIMIT).rows()
    assert got == [
        # a, R1: by date (row 3 before row 2), the unit with no date last.
        ("a", "R1", 3, 1, 1),
        ("a", "R1", 2, 2, 1),
        ("a", "R1", 9, 3, 1),
        ("a", "R2", 4, 1, 1),
        # b, pudong; row 7 has no district and is not counted. c has no quota.
        ("b", "R1", 6, 1, 1),
        ("b", "R1", 5, 2, 1),
    ]


def test_the_same_day_falls_back_to_the_tie_break() -> None:
    units = pl.DataFrame(
        {
            "program_id": ["a"] * 3,
            "round": ["R1"] * 3,
            "district": [None] * 3,
            "awarded_on": [20230501] * 3,
            "src": ["f"] * 3,
            "row": [9, 4, 6],
        }
    )
    placed = places(units, {"a": quota("hard", 2)}, tie=["src", "row"])
    assert placed.select("row", PLACE).rows() == [(4, 1), (6, 2), (9, 3)]


def test_the_time_received_comes_before_the_award_date() -> None:
    """Where the awards say when each application was received, that decides (as it did in
    allocation); the award date decides between units received at the same time or with no
    time, after those with one."""
    units = pl.DataFrame(
        {
            "program_id": ["a"] * 5,
            "round": ["R1"] * 5,
            "district": [None] * 5,
            "submitted_at": [20230302100000, 20230301100000, None, 20230301100000, None],
            "awarded_on": [20230501, 20230502, 20230401, 20230503, 20230402],
            "src": ["f"] * 5,
            "row": [2, 3, 4, 5, 6],
        },
        schema_overrides={"district": pl.String},
    )
    placed = places(units, {"a": quota("hard", 2)}, tie=["src", "row"])
    assert placed.select("row", PLACE).rows() == [(3, 1), (5, 2), (2, 3), (4, 4), (6, 5)]


def test_nothing_to_place() -> None:
    units = pl.DataFrame(
        {"program_id": ["c"], "round": ["R1"], "district": [None], "awarded_on": [1], "row": [1]},
        schema_overrides={"district": pl.String},
    )
    placed = places(units, {"a": quota("hard", 1)}, tie=["row"])
    assert placed.height == 0 and {PLACE, LIMIT} <= set(placed.columns)

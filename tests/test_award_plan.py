"""The award plan compiled by the loader, and what the audit derives from it."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest

from service.rules.award_plan import (
    AwardPlan,
    Cap,
    Fixed,
    PerItem,
    Requested,
    Tiers,
    UnitAmounts,
    sum_of,
)
from service.rules.loader import RuleBook


def test_every_program_has_a_plan_of_its_rule_file(book: RuleBook) -> None:
    art19 = book.programs["ipa2022-art19"].plan
    assert art19.base == PerItem("transactions", "per_patent_amount", Decimal("1500.00"))
    assert [c.name for c in art19.caps] == ["pool"] and art19.items == "transactions"
    art21 = book.programs["ipa2022-art21"].plan
    assert art21.base == Tiers("performance_tier", "tier_amounts", None)
    stcsm = book.programs["stcsm2023-concept-verification"].plan
    assert isinstance(stcsm.base, Requested) and stcsm.disbursement is not None
    assert stcsm.disbursement.first_year_cap is not None
    assert book.programs["stcsm2022-concept-verification"].plan.disbursement is not None
    assert book.programs["stcsm2022-concept-verification"].plan.disbursement.first_year_cap is None


def test_a_round_sets_the_tier_amounts(book: RuleBook) -> None:
    plan = book.programs["ipa2022-art21"].plan
    assert plan.for_round(None) is plan
    assert plan.for_round({"other": 1}) is plan
    got = plan.for_round({"tier_amounts": {"1": "50000.00", 2: Decimal("30000.00")}}).base
    assert isinstance(got, Tiers)
    assert got.amounts == {1: Decimal("50000.00"), 2: Decimal("30000.00")}


def _cap(limit: str) -> tuple[Cap, ...]:
    return (Cap("pool", "第十九条", Decimal(limit)),)


def test_unit_amounts_are_derived_from_the_steps() -> None:
    fixed = AwardPlan(Fixed("fixed_amount", Decimal("300000.00")))
    assert fixed.unit_amounts() == UnitAmounts((30_000_000,), 30_000_000, 30_000_000)
    per_item = AwardPlan(PerItem("t", "a", Decimal("1500.00")), _cap("3000000.00"))
    assert per_item.unit_amounts() == UnitAmounts(None, 150_000, 300_000_000)
    # A cap that is not a multiple of the per-item amount can be paid too.
    assert AwardPlan(PerItem("t", "a", Decimal("3.00")), _cap("10.00")).unit_amounts() == (
        UnitAmounts(None, 100, 1000)
    )
    tiers = {1: Decimal("600000.00"), 2: Decimal("300000.00"), 3: Decimal("100000.00")}
    tiered = AwardPlan(Tiers("tier", "tier_amounts", tiers), _cap("500000.00"))
    assert tiered.unit_amounts().values == (10_000_000, 30_000_000, 50_000_000)  # capped
    pending = AwardPlan(Tiers("tier", "tier_amounts", None), _cap("500000.00"))
    assert pending.unit_amounts() == UnitAmounts(None, 1, 50_000_000)
    assert AwardPlan(Requested("requested_amount")).unit_amounts() == UnitAmounts(None, 1, None)


def _brute(values: tuple[int, ...], units: int, total: int) -> bool:
    return any(sum(c) == total for c in itertools.combinations_with_replacement(values, units)) or (
        units == 0 and total == 0
    )


@pytest.mark.parametrize("tiers", [1, 2, 3, 4, 5])
def test_sum_of_any_number_of_tiers_agrees_with_trying_every_combination(tiers: int) -> None:
    rng = random.Random(tiers)
    for _ in range(60):
        values = tuple(rng.choice([0, 1, 3, 7, 10, 25, 26, 50]) for _ in range(tiers))
        units = rng.randint(0, 6)
        reachable = {sum(c) for c in itertools.combinations_with_replacement(values, units)}
        for total in [*reachable, *(t + 1 for t in reachable), rng.randint(0, 300)]:
            assert sum_of(values, units, total) is _brute(values, units, total), (
                values,
                units,
                total,
            )


def test_sum_of_many_units_is_decided_or_left_undecided() -> None:
    values = (5_000_000, 3_000_001, 1_000_000, 0)
    assert sum_of(values, 1_000, 5_000_000 * 400 + 3_000_001 * 3) is True
    assert sum_of(values, 1_000, 5_000_000 * 1_000 + 1) is False  # above the largest
    assert sum_of(values, 1_000, 7) is False
    many = (5_000_000, 4_000_003, 3_000_001, 1_000_007, 0)
    assert sum_of(many, 100_000, 250_000_000_001, budget=1_000) is None

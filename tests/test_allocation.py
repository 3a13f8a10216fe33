"""Pool allocation (shared/spec/programs.md, "Pool allocation across a round"): pure arithmetic,
no database. Quotas: tests/test_quotas.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.allocation import Claim, allocate_pool, stable_order

T0 = datetime(2023, 7, 1, 9, 0, tzinfo=UTC)


def claim(app_id: int, entitlement: str, minutes: int = 0) -> Claim:
    return Claim(app_id, T0 + timedelta(minutes=minutes), Decimal(entitlement))


def amounts(claims: list[Claim], pool: str | None) -> dict[int, str]:
    available = None if pool is None else Decimal(pool)
    return {s.application_id: str(s.amount) for s in allocate_pool(claims, available)}


# -- the pool -----------------------------------------------------------------------------


def test_three_banks_share_the_art20_pool_pro_rata() -> None:
    # 第二十条: 5,000,000 for banks entitled to 3,000,000, 2,000,000 and 1,000,000.
    banks = [claim(1, "3000000.00"), claim(2, "2000000.00", 1), claim(3, "1000000.00", 2)]
    got = amounts(banks, "5000000.00")
    assert got == {1: "2500000.00", 2: "1666666.67", 3: "833333.33"}
    assert sum(Decimal(v) for v in got.values()) == Decimal("5000000.00")


def test_under_the_pool_everyone_gets_the_entitlement() -> None:
    claims = [claim(1, "1500.00"), claim(2, "4500.00", 1)]
    assert amounts(claims, "3000000.00") == {1: "1500.00", 2: "4500.00"}


def test_exactly_the_pool_is_paid_in_full_and_one_fen_more_is_shared() -> None:
    at_pool = [claim(1, "200000.00"), claim(2, "100000.00", 1)]
    assert amounts(at_pool, "300000.00") == {1: "200000.00", 2: "100000.00"}
    one_fen_over = [claim(1, "200000.01"), claim(2, "100000.00", 1)]
    got = amounts(one_fen_over, "300000.00")
    assert sum(Decimal(v) for v in got.values()) == Decimal("300000.00")
    assert Decimal(got[1]) <= Decimal("200000.01") and Decimal(got[2]) <= Decimal("100000.00")


def test_no_pool_means_the_entitlements() -> None:
    assert amounts([claim(1, "800000.00"), claim(2, "1.00", 1)], None) == {
        1: "800000.00",
        2: "1.00",
    }


def test_an_empty_pool_pays_nothing() -> None:
    assert amounts([claim(1, "10.00"), claim(2, "20.00")], "0.00") == {1: "0.00", 2: "0.00"}


def test_equal_remainders_go_to_the_earlier_submission() -> None:
    # 3 equal claims of 1.00 sharing 2.00: 0.666… each, 2 leftover fen for 3 equal remainders.
    claims = [claim(7, "1.00", minutes=5), claim(8, "1.00", minutes=1), claim(9, "1.00", minutes=3)]
    assert amounts(claims, "2.00") == {8: "0.67", 9: "0.67", 7: "0.66"}


def test_equal_remainders_and_equal_times_go_to_the_lower_id() -> None:
    claims = [claim(12, "1.00"), claim(10, "1.00"), claim(11, "1.00")]
    assert amounts(claims, "1.00") == {10: "0.34", 11: "0.33", 12: "0.33"}


def test_the_largest_remainder_wins_over_an_earlier_submission() -> None:
    # 0.10 shared 2:1 -> 0.0666… and 0.0333…: the larger remainder (2/3 fen) takes the fen,
    # although the other application came first.
    claims = [claim(1, "1.00", minutes=0), claim(2, "2.00", minutes=9)]
    assert amounts(claims, "0.10") == {1: "0.03", 2: "0.07"}


def test_shares_come_back_in_the_stable_order() -> None:
    claims = [claim(3, "1.00", 2), claim(1, "1.00", 2), claim(2, "1.00", 0)]
    assert [s.application_id for s in allocate_pool(claims, Decimal("3.00"))] == [2, 1, 3]
    assert [c.application_id for c in stable_order(claims)] == [2, 1, 3]


entitlements = st.lists(
    st.integers(min_value=0, max_value=10**11).map(lambda fen: Decimal(fen) / 100),
    min_size=1,
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(entitlements, st.integers(min_value=0, max_value=10**11))
def test_total_is_min_of_pool_and_entitlements_and_nobody_gets_more(
    values: list[Decimal], pool_fen: int
) -> None:
    pool = Decimal(pool_fen) / 100
    claims = [claim(i + 1, str(v.quantize(Decimal("0.01"))), i % 3) for i, v in enumerate(values)]
    shares = allocate_pool(claims, pool)
    total = sum((s.amount for s in shares), Decimal(0))
    assert total == min(pool, sum((c.entitlement for c in claims), Decimal(0)))
    for share in shares:
        assert Decimal(0) <= share.amount <= share.entitlement
        assert share.amount == share.amount.quantize(Decimal("0.01"))
        # Within one fen of the exact pro-rata share.
        wanted = sum((c.entitlement for c in claims), Decimal(0))
        if wanted > pool:
            exact = pool * share.entitlement / wanted
            assert abs(share.amount - exact) < Decimal("0.01")


@settings(max_examples=100, deadline=None)
@given(entitlements, st.integers(min_value=0, max_value=10**11), st.randoms())
def test_the_order_claims_arrive_in_does_not_matter(
    values: list[Decimal], pool_fen: int, rng: object
) -> None:
    claims = [claim(i + 1, str(v.quantize(Decimal("0.01"))), i % 4) for i, v in enumerate(values)]
    shuffled = list(claims)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    pool = Decimal(pool_fen) / 100
    assert allocate_pool(claims, pool) == allocate_pool(shuffled, pool)


def test_negative_or_sub_fen_entitlements_are_refused() -> None:
    with pytest.raises(ValueError):
        allocate_pool([claim(1, "-1.00")], Decimal("10.00"))
    with pytest.raises(ValueError):
        allocate_pool([claim(1, "1.001")], Decimal("10.00"))

"""Funding rounds on SQLite and PostgreSQL: tier amounts set per round, quotas (hard: refuse and
name who is over, in submission order; soft: warn; one per district), and the program pool
spread by the largest-remainder rule, recorded and repeatable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.dbsupport import (
    agency,
    bank,
    client_for,
    example,
    postgres_schema,
    sqlite_url,
    submit,
    uscc,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A fresh database per test: a program's pool is shared by all of its rounds."""
    if request.param == "sqlite":
        with client_for(sqlite_url(tmp_path)) as client:
            yield client
    else:
        with postgres_schema("rounds") as url, client_for(url) as client:
            yield client


def open_round(api: TestClient, program_id: str, **overrides: Any) -> int:
    body: dict[str, Any] = {"program_id": program_id, "name": f"{program_id} 测试轮次"}
    if overrides:
        body["overrides"] = overrides
    response = api.post("/v1/rounds", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def approved(api: TestClient, program_id: str, application: dict[str, Any], round_id: int) -> int:
    record = submit(api, program_id, application, round_id).json()
    app_id = int(record["id"])
    assert (
        api.post(f"/v1/applications/{app_id}/approval", json={"approved": True}).status_code == 200
    )
    return app_id


def allocate(api: TestClient, round_id: int) -> dict[str, Any]:
    response = api.post(f"/v1/rounds/{round_id}/allocate")
    assert response.status_code == 200, response.text
    return dict(response.json())


def amounts(result: dict[str, Any]) -> dict[int, str]:
    return {a["application_id"]: a["amount"] for a in result["allocations"]}


def reasons(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The excluded applications and why (the bilingual messages left out)."""
    return [
        {"application_id": e["application_id"], "reason": e["reason"]} for e in result["excluded"]
    ]


def rules(result: dict[str, Any]) -> list[str]:
    return [w["rule"] for w in result["warnings"]]


# -- rounds ------------------------------------------------------------------------------


def test_tier_amounts_are_set_on_the_round(api: TestClient) -> None:
    response = api.post(
        "/v1/rounds",
        json={
            "program_id": "ipa2022-art21",
            "name": "2023年度",
            "overrides": {"tier_amounts": {"1": "100000", "2": 60000, "3": "30000.50"}},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["overrides"] == {
        "tier_amounts": {"1": "100000.00", "2": "60000.00", "3": "30000.50"}
    }
    assert body["allocation"] is None and body["applications"] == 0
    assert api.get(f"/v1/rounds/{body['id']}").json() == body


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"program_id": "ipa2022-art21", "name": "n"}, "overrides.tier_amounts"),
        (
            {"program_id": "ipa2022-art20", "name": "n", "overrides": {"tier_amounts": {"1": 1}}},
            "overrides.tier_amounts",
        ),
        (
            {
                "program_id": "ipa2022-art21",
                "name": "n",
                "overrides": {"tier_amounts": {"1": "1.001"}},
            },
            "overrides.tier_amounts.1",
        ),
        ({"program_id": "ipa2022-art21", "name": ""}, "name"),
        (
            {"program_id": "ipa2022-art20", "name": "n", "overrides": {"pool": "1"}},
            "overrides.pool",
        ),
    ],
)
def test_bad_rounds_are_422(api: TestClient, body: dict[str, Any], path: str) -> None:
    response = api.post("/v1/rounds", json=body)
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["detail"]]


def test_unknown_rounds_and_programs(api: TestClient) -> None:
    assert api.post("/v1/rounds", json={"program_id": "nope", "name": "n"}).status_code == 404
    assert api.get("/v1/rounds/424242").status_code == 404
    response = api.post("/v1/rounds/424242/allocate")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


# -- the pool ----------------------------------------------------------------------------


def test_three_banks_share_the_art20_pool(api: TestClient) -> None:
    # The spec's example: 第二十条's 5,000,000 for entitlements of 3,000,000, 2,000,000 and
    # 1,000,000 (0.1% of 3, 2 and 1 billion disbursed).
    round_id = open_round(api, "ipa2022-art20")
    first = approved(api, "ipa2022-art20", bank(1, "3000000.00"), round_id)
    second = approved(api, "ipa2022-art20", bank(2, "2000000.00"), round_id)
    third = approved(api, "ipa2022-art20", bank(3, "1000000.00"), round_id)
    result = allocate(api, round_id)
    assert amounts(result) == {first: "2500000.00", second: "1666666.67", third: "833333.33"}
    assert [a["entitlement"] for a in result["allocations"]] == [
        "3000000.00",
        "2000000.00",
        "1000000.00",
    ]
    assert (result["pool"], result["available"], result["total"]) == (
        "5000000.00",
        "5000000.00",
        "5000000.00",
    )
    assert result["total_entitlement"] == "6000000.00"
    assert result["run"] == 1 and result["excluded"] == []
    assert rules(result) == ["pro-rata", "pool-exhausted"]
    assert result["warnings"][0]["ratio"] == "0.833333"


def test_allocating_twice_gives_the_same_recorded_result(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art20")
    for n, amount in enumerate(["2500000.00", "2500000.00", "1.00"]):
        approved(api, "ipa2022-art20", bank(10 + n, amount), round_id)
    first = allocate(api, round_id)
    second = allocate(api, round_id)
    assert second == first
    assert api.get(f"/v1/rounds/{round_id}").json()["allocation"] == {
        k: v for k, v in first.items() if k not in ("excluded", "fund", "items_checked")
    }


def test_a_changed_approval_is_a_new_run_and_the_old_one_stays(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art20")
    keep = approved(api, "ipa2022-art20", bank(20, "4000000.00"), round_id)
    drop = approved(api, "ipa2022-art20", bank(21, "4000000.00"), round_id)
    first = allocate(api, round_id)
    assert amounts(first) == {keep: "2500000.00", drop: "2500000.00"}
    api.post(f"/v1/applications/{drop}/approval", json={"approved": False})
    second = allocate(api, round_id)
    assert second["run"] == 2
    assert amounts(second) == {keep: "4000000.00"}
    assert reasons(second) == [{"application_id": drop, "reason": "not_approved"}]


def test_only_approved_eligible_applications_take_part(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art20")
    paid = approved(api, "ipa2022-art20", bank(30, "100.00"), round_id)
    pending = submit(api, "ipa2022-art20", bank(31, "100.00"), round_id).json()["id"]
    ineligible_body = bank(32, "100.00")
    ineligible_body["applicant"]["credit_status"] = "bad"
    ineligible = approved(api, "ipa2022-art20", ineligible_body, round_id)
    listed = approved(api, "ipa2022-art20", bank(33, "100.00"), round_id)
    # 第二十六条: listed after its evaluation, before the allocation.
    api.post(
        "/v1/admin/disqualifications",
        json={
            "uscc": uscc(33),
            "reason": "虚假交易",
            "decided_on": "2023-08-01",
            "added_by": "运营处",
        },
    )
    result = allocate(api, round_id)
    assert amounts(result) == {paid: "100.00"}
    assert reasons(result) == [
        {"application_id": pending, "reason": "not_approved"},
        {"application_id": ineligible, "reason": "not_eligible"},
        {"application_id": listed, "reason": "disqualified"},
    ]


def test_the_pool_is_the_programs_across_its_rounds(api: TestClient) -> None:
    spring = open_round(api, "ipa2022-art20")
    autumn = open_round(api, "ipa2022-art20")
    big = approved(api, "ipa2022-art20", bank(40, "4000000.00"), spring)
    assert amounts(allocate(api, spring)) == {big: "4000000.00"}
    a = approved(api, "ipa2022-art20", bank(41, "1000000.00"), autumn)
    b = approved(api, "ipa2022-art20", bank(42, "1000000.00"), autumn)
    later = allocate(api, autumn)
    assert (later["allocated_in_other_rounds"], later["available"]) == ("4000000.00", "1000000.00")
    assert amounts(later) == {a: "500000.00", b: "500000.00"}
    # The first round, allocated again, now has 4,000,000 of room: the same amounts, and a new
    # run recording the new room.
    again = allocate(api, spring)
    assert amounts(again) == {big: "4000000.00"}
    assert (again["run"], again["available"]) == (2, "4000000.00")
    assert allocate(api, spring)["run"] == 2


def test_art21_entitlement_is_the_rounds_tier_amount(api: TestClient) -> None:
    generous = open_round(
        api, "ipa2022-art21", tier_amounts={"1": "300000.00", "2": "200000.00", "3": "100000.00"}
    )
    ids = [approved(api, "ipa2022-art21", agency(50 + t, t), generous) for t in (1, 2, 3)]
    result = allocate(api, generous)
    assert [a["entitlement"] for a in result["allocations"]] == [
        "300000.00",
        "200000.00",
        "100000.00",
    ]
    # 600,000 asked of the 500,000 pool (第二十一条).
    assert amounts(result) == dict(zip(ids, ["250000.00", "166666.67", "83333.33"], strict=True))
    record = api.get(f"/v1/applications/{ids[0]}").json()
    assert record["evaluation"]["award"]["amount"] == "300000.00"


# -- quotas ------------------------------------------------------------------------------


def _insurer(n: int, submitted_at: str) -> dict[str, Any]:
    body = example("ipa2022-art09-2")
    body["applicant"]["uscc"] = uscc(n)
    body["submitted_at"] = submitted_at
    return body


def test_a_hard_quota_is_refused_naming_who_is_over_in_submission_order(api: TestClient) -> None:
    # 第九条（二）: one insurer. The order is by submission time: the application submitted
    # later is the one over the quota, although its id is lower.
    round_id = open_round(api, "ipa2022-art09-2")
    late = approved(api, "ipa2022-art09-2", _insurer(60, "2023-03-02T10:00:00+08:00"), round_id)
    early = approved(api, "ipa2022-art09-2", _insurer(61, "2023-03-01T10:00:00+08:00"), round_id)
    response = api.post(f"/v1/rounds/{round_id}/allocate")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "quota_exceeded" and body["message_zh"] and body["message_en"]
    assert body["quota"] == {"kind": "hard", "limit": 1, "article": "第九条（二）"}
    (breach,) = body["breaches"]
    assert (breach["applications"], breach["over"]) == ([early, late], [late])
    assert api.get(f"/v1/rounds/{round_id}").json()["allocation"] is None  # nothing recorded

    api.post(f"/v1/applications/{early}/approval", json={"approved": False})
    assert amounts(allocate(api, round_id)) == {late: "280000.00"}


def test_a_soft_quota_warns_and_allocates(api: TestClient) -> None:
    # 第九条（一）: about 8 banks.
    round_id = open_round(api, "ipa2022-art09-1")
    ids = []
    for n in range(9):
        body = example("ipa2022-art09-1")
        body["applicant"]["uscc"] = uscc(70 + n)
        ids.append(approved(api, "ipa2022-art09-1", body, round_id))
    api.post(f"/v1/applications/{ids[-1]}/approval", json={"approved": False})
    assert allocate(api, round_id)["warnings"] == []
    api.post(f"/v1/applications/{ids[-1]}/approval", json={"approved": True})
    result = allocate(api, round_id)
    (warning,) = result["warnings"]
    assert (warning["rule"], warning["article"], warning["limit"], warning["count"]) == (
        "quota",
        "第九条（一）",
        8,
        9,
    )
    assert len(result["allocations"]) == 9


def test_one_patent_supermarket_per_district(api: TestClient) -> None:
    # 第十二条（二）: the first supermarket of each district only.
    round_id = open_round(api, "ipa2022-art12-2")
    placed = {}
    for n, district in [(80, "pudong"), (81, "浦东新区"), (82, "xuhui")]:
        body = example("ipa2022-art12-2")
        body["applicant"]["uscc"] = uscc(n)
        body["district"] = district
        placed[n] = approved(api, "ipa2022-art12-2", body, round_id)
    response = api.post(f"/v1/rounds/{round_id}/allocate")
    assert response.status_code == 409, response.text
    (breach,) = response.json()["breaches"]
    assert (breach["kind"], breach["district"]) == ("per_district", "pudong")
    assert (breach["applications"], breach["over"]) == ([placed[80], placed[81]], [placed[81]])
    api.post(f"/v1/applications/{placed[81]}/approval", json={"approved": False})
    assert set(amounts(allocate(api, round_id))) == {placed[80], placed[82]}

"""Money is paid once (issue 15), on SQLite and PostgreSQL: the claims ledger (a patent, a loan, a
contract is paid once across a program's applications, whoever claims it and in whichever round),
一次性 (one award per organisation), 第三条's fund across programs, closed rounds, and what an
allocation tells the reviewer."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.dbsupport import (
    RULES,
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
    if request.param == "sqlite":
        with client_for(sqlite_url(tmp_path)) as client:
            yield client
    else:
        with postgres_schema("ledger") as url, client_for(url) as client:
            yield client


def open_round(api: TestClient, program_id: str, **overrides: Any) -> int:
    body: dict[str, Any] = {"program_id": program_id, "name": f"{program_id} 轮次"}
    if overrides:
        body["overrides"] = overrides
    response = api.post("/v1/rounds", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def approve(api: TestClient, app_id: int) -> None:
    response = api.post(f"/v1/applications/{app_id}/approval", json={"approved": True})
    assert response.status_code == 200, response.text


def stored(api: TestClient, program_id: str, body: dict[str, Any], round_id: int) -> Any:
    response = submit(api, program_id, body, round_id)
    assert response.status_code == 201, response.text
    return response.json()


def allocate(api: TestClient, round_id: int) -> dict[str, Any]:
    response = api.post(f"/v1/rounds/{round_id}/allocate")
    assert response.status_code == 200, response.text
    return dict(response.json())


def paid(result: dict[str, Any]) -> dict[int, str]:
    return {a["application_id"]: a["amount"] for a in result["allocations"]}


def excluded(result: dict[str, Any]) -> dict[int, str]:
    return {e["application_id"]: e["reason"] for e in result["excluded"]}


def university(n: int, submitted_at: str = "2023-07-15T10:00:00+08:00") -> dict[str, Any]:
    """第十九条: the example's three patents, claimed by university ``n``."""
    body = example("ipa2022-art19")
    body["applicant"]["uscc"] = uscc(n, prefix="12310000MA")
    body["applicant"]["name"] = f"上海测试大学{n}"
    body["submitted_at"] = submitted_at
    return body


# -- the claims ledger ------------------------------------------------------------------------


def test_three_patents_claimed_by_two_universities_are_paid_once(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art19")
    first = stored(api, "ipa2022-art19", university(1), round_id)
    # The same patents, written another way (CN… without the dot), by another university.
    body = university(2, "2023-07-15T11:00:00+08:00")
    body["transactions"][0]["patent_number"] = "CN2015109060905"
    second = stored(api, "ipa2022-art19", body, round_id)
    assert first["evaluation"]["award"]["amount"] == "4500.00"

    # The portal learns each item was claimed before, with the articles, never by whom.
    items = second["evaluation"]["items"]
    assert [i["counted"] for i in items] == [False, False, False]
    reason = items[0]["reasons"][0]
    assert (reason["rule"], reason["article"]) == ("patent-claimed-before", "第十九条、第二十五条")
    assert "实绩实奖" in reason["message_zh"] and "paid once" in reason["message_en"]
    assert f"application {first['id']}" not in str(items)
    assert first["applicant_uscc"] not in str(second) and "claims" not in second
    assert second["evaluation"]["eligible"] is False
    assert second["evaluation"]["award"]["amount"] == "0.00"

    # The reviewer sees the other application, and a 第二十六条 warning (another organisation).
    seen = api.get(f"/v1/applications/{second['id']}").json()["claims"][0]
    assert [c["application_id"] for c in seen["also_claimed_by"]] == [first["id"]]
    assert seen["also_claimed_by"][0]["same_applicant"] is False
    assert seen["warning"]["article"] == "第二十六条"

    approve(api, first["id"])
    approve(api, second["id"])
    result = allocate(api, round_id)
    assert paid(result) == {first["id"]: "4500.00"}
    assert excluded(result) == {second["id"]: "items_claimed_elsewhere"}
    assert result["total"] == "4500.00"


def test_a_patent_shared_with_an_earlier_claim_is_left_out_of_the_later_award(
    api: TestClient,
) -> None:
    round_id = open_round(api, "ipa2022-art19")
    first = stored(api, "ipa2022-art19", university(3), round_id)
    body = university(4, "2023-07-16T10:00:00+08:00")
    body["transactions"][1]["patent_number"] = _patent("201911112222")  # a new patent
    second = stored(api, "ipa2022-art19", body, round_id)
    assert [i["counted"] for i in second["evaluation"]["items"]] == [False, True, False]
    assert second["evaluation"]["award"]["amount"] == "1500.00"
    approve(api, first["id"])
    approve(api, second["id"])
    assert paid(allocate(api, round_id)) == {first["id"]: "4500.00", second["id"]: "1500.00"}


def _patent(digits: str) -> str:
    from service.schemas.identifiers import patent_check_char

    return f"ZL{digits}.{patent_check_char(digits)}"


def test_an_item_whose_first_claim_is_withdrawn_is_paid_to_the_next(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art19")
    first = stored(api, "ipa2022-art19", university(5), round_id)
    second = stored(api, "ipa2022-art19", university(6, "2023-07-15T12:00:00+08:00"), round_id)
    approve(api, first["id"])
    approve(api, second["id"])
    api.post(f"/v1/applications/{first['id']}/approval", json={"approved": False, "note": "撤回"})
    # The earliest payable claim is now the second: its patents are paid to it, once.
    result = allocate(api, round_id)
    assert paid(result) == {second["id"]: "4500.00"}
    assert excluded(result)[first["id"]] == "not_approved"


def test_a_loan_paid_in_round_one_is_not_paid_again_to_another_bank_in_round_two(
    api: TestClient,
) -> None:
    one, two = open_round(api, "ipa2022-art20"), open_round(api, "ipa2022-art20")
    lender = bank(1, "1000.00")
    first = stored(api, "ipa2022-art20", lender, one)
    approve(api, first["id"])
    assert paid(allocate(api, one)) == {first["id"]: "1000.00"}

    other = bank(2, "1000.00", "2023-08-01T09:00:00+08:00")
    other["loans"] = copy.deepcopy(lender["loans"])  # the same loan, claimed by another bank
    own_loan = bank(2, "500.00")["loans"][0]
    own_loan["loan_id"] = "ZY-own"
    other["loans"].append(own_loan)
    second = stored(api, "ipa2022-art20", other, two)
    assert [i["counted"] for i in second["evaluation"]["items"]] == [False, True]
    assert second["evaluation"]["items"][0]["reasons"][0]["article"] == "第二十条、第二十五条"
    approve(api, second["id"])
    result = allocate(api, two)
    assert paid(result) == {second["id"]: "500.00"}
    assert result["allocations"][0]["items"] == [f"{own_loan['borrower']['uscc']}|ZY-own|500000.00"]


def test_the_same_applicant_claiming_a_contract_twice_is_paid_once(api: TestClient) -> None:
    one, two = open_round(api, "ipa2022-art22"), open_round(api, "ipa2022-art22")
    body = example("ipa2022-art22")
    first = stored(api, "ipa2022-art22", body, one)
    again = copy.deepcopy(body)
    again["submitted_at"] = "2023-08-01T10:00:00+08:00"
    second = stored(api, "ipa2022-art22", again, two)
    assert second["evaluation"]["award"]["amount"] == "0.00"
    claims = api.get(f"/v1/applications/{second['id']}").json()["claims"]
    assert claims[0]["also_claimed_by"][0]["same_applicant"] is True
    assert claims[0]["warning"] is None  # the same organisation: no 第二十六条 warning
    approve(api, first["id"])
    approve(api, second["id"])
    total = allocate(api, one)["total"]
    assert allocate(api, two)["allocations"] == []
    assert total == first["evaluation"]["award"]["amount"]


# -- 一次性: one award per organisation ---------------------------------------------------------


def test_a_one_off_grant_is_paid_once_per_organisation_across_rounds(api: TestClient) -> None:
    one, two = open_round(api, "ipa2022-art06"), open_round(api, "ipa2022-art06")
    first = stored(api, "ipa2022-art06", example("ipa2022-art06"), one)
    again = example("ipa2022-art06")
    again["submitted_at"] = "2023-03-02T10:00:00+08:00"
    second = stored(api, "ipa2022-art06", again, two)
    failed = {r["rule"]: r for r in second["evaluation"]["reasons"] if not r["passed"]}
    assert failed["one-award-per-unit"]["article"] == "第六条"
    assert second["evaluation"]["eligible"] is False
    approve(api, first["id"])
    approve(api, second["id"])
    assert paid(allocate(api, one)) == {first["id"]: "600000.00"}
    # Re-evaluated, on its own merits it is fine; allocation still pays the organisation once.
    api.post(f"/v1/applications/{second['id']}/evaluations")
    assert excluded(allocate(api, two)) == {second["id"]: "once_per_unit"}


def test_a_rejected_first_application_leaves_the_one_off_grant_to_the_next(
    api: TestClient,
) -> None:
    round_id = open_round(api, "ipa2022-art06")
    first = stored(api, "ipa2022-art06", example("ipa2022-art06"), round_id)
    api.post(f"/v1/applications/{first['id']}/approval", json={"approved": False})
    again = example("ipa2022-art06")
    again["submitted_at"] = "2023-03-02T10:00:00+08:00"
    second = stored(api, "ipa2022-art06", again, round_id)
    assert second["evaluation"]["eligible"] is True
    approve(api, second["id"])
    assert paid(allocate(api, round_id)) == {second["id"]: "600000.00"}


# -- what an allocation says -----------------------------------------------------------------


def test_a_round_with_nothing_approved_records_nothing_and_says_so(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art20")
    pending = stored(api, "ipa2022-art20", bank(40, "10.00"), round_id)
    result = allocate(api, round_id)
    assert result["run"] is None and result["allocations"] == []
    assert result["warnings"][0]["rule"] == "nothing-approved"
    assert result["excluded"][0]["application_id"] == pending["id"]
    assert result["excluded"][0]["message_zh"] and result["excluded"][0]["message_en"]
    assert api.get(f"/v1/rounds/{round_id}").json()["allocation"] is None


def test_lines_name_the_applicant_and_the_fund_is_reported(api: TestClient) -> None:
    round_id = open_round(api, "ipa2022-art20")
    app = stored(api, "ipa2022-art20", bank(41, "10.00"), round_id)
    approve(api, app["id"])
    result = allocate(api, round_id)
    line = result["allocations"][0]
    assert (line["applicant_name"], line["applicant_uscc"]) == ("上海测试银行41", uscc(41))
    assert result["fund"]["total"] == "54472000.00"
    assert result["fund"]["left"] == "54471990.00"
    assert result["pool_left"] == "4999990.00"


def test_tier_amounts_above_the_pool_are_refused(api: TestClient) -> None:
    response = api.post(
        "/v1/rounds",
        json={
            "program_id": "ipa2022-art21",
            "name": "过高",
            "overrides": {"tier_amounts": {"1": "99999999.00", "2": "1.00", "3": "1.00"}},
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["path"] == "overrides.tier_amounts"


def test_a_closed_round_is_never_allocated_again_and_keeps_counting(api: TestClient) -> None:
    one = open_round(api, "ipa2022-art21", tier_amounts={"1": "100000", "2": "1", "3": "1"})
    app = stored(api, "ipa2022-art21", agency(50, 1), one)
    approve(api, app["id"])
    allocate(api, one)
    assert api.post(f"/v1/rounds/{one}/closure").status_code == 200
    refused = api.post(f"/v1/rounds/{one}/allocate")
    assert refused.status_code == 409 and refused.json()["code"] == "round_closed"
    assert api.post(f"/v1/rounds/{one}/closure").status_code == 409
    late = submit(api, "ipa2022-art21", agency(51, 1), one)
    assert late.status_code == 409 and late.json()["code"] == "round_closed"
    two = open_round(api, "ipa2022-art21", tier_amounts={"1": "100000", "2": "1", "3": "1"})
    result = allocate(api, two)
    assert result["run"] is None  # nothing approved here
    never = open_round(api, "ipa2022-art20")
    assert api.post(f"/v1/rounds/{never}/closure").json()["code"] == "nothing_to_close"


# -- 第三条: the fund across programs ------------------------------------------------------------


def small_fund(tmp_path: Path, fund: str) -> Path:
    """The rules with a smaller 第三条 fund, so that two programs can exhaust it in a test."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    general = rules / "ipa2022" / "_general.yaml"
    text = general.read_text(encoding="utf-8")
    general.write_text(text.replace('value: "54472000.00"', f'value: "{fund}"'), encoding="utf-8")
    return rules


def test_all_programs_together_stay_within_the_fund(tmp_path: Path) -> None:
    with client_for(sqlite_url(tmp_path), rules_dir=small_fund(tmp_path, "5000.00")) as api:
        banks = open_round(api, "ipa2022-art20")
        b = stored(api, "ipa2022-art20", bank(60, "3000.00"), banks)
        approve(api, b["id"])
        assert allocate(api, banks)["total"] == "3000.00"
        unis = open_round(api, "ipa2022-art19")
        u = stored(api, "ipa2022-art19", university(61), unis)
        approve(api, u["id"])
        result = allocate(api, unis)
        assert paid(result) == {u["id"]: "2000.00"}  # 4,500 entitled; 2,000 left of the fund
        rules = [w["rule"] for w in result["warnings"]]
        assert rules == ["pro-rata", "fund-exhausted"]
        assert result["warnings"][0]["article"] == "第三条"
        assert result["fund"] == {
            "article": "第三条",
            "total": "5000.00",
            "allocated_elsewhere": "3000.00",
            "left": "0.00",
        }

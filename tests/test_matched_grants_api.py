"""The science commission's matched grants: editions, the /requirements inverse, the catalogue."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_each_guide_year_is_its_own_program_from_one_rule_file(client: TestClient) -> None:
    p22 = client.get("/v1/programs/stcsm2022-concept-verification").json()
    p23 = client.get("/v1/programs/stcsm2023-concept-verification").json()
    assert p22["rule_file"] == p23["rule_file"] == "rules/stcsm/concept-verification.yaml"
    assert (p22["guide_year"], p23["guide_year"]) == (2022, 2023)
    params22 = {p["name"]: p for p in p22["parameters"]}
    params23 = {p["name"]: p for p in p23["parameters"]}
    assert (params22["cap"]["value"], params22["cap"]["article"]) == ("2000000.00", "表1-9")
    assert (params23["cap"]["value"], params23["cap"]["article"]) == ("5000000.00", "表1-4")
    assert params22["self_funding_ratio"]["value"] == "4"
    assert params23["self_funding_ratio"]["value"] == "2"
    assert "first_year_cap" not in params22 and params23["first_year_cap"]["value"] == "3000000.00"
    conditions22 = {c["id"] for c in p22["conditions"]}
    conditions23 = {c["id"] for c in p23["conditions"]}
    assert conditions22 - conditions23 == {"district-matching"}
    assert p22["quota"] == {
        "kind": "hard",
        "limit": 1,
        "article": "表1-9",
        "zh": p22["quota"]["zh"],
        "en": p22["quota"]["en"],
    }
    assert p23["once_per_applicant"]["article"] == "四（一）注4"
    assert p23["disbursement"]["schedules"]["3"][0] == {"stage": "first_year", "share": "0.60"}


def test_requirements_give_minimum_self_and_district_funds(client: TestClient) -> None:
    result = client.post(
        "/v1/programs/stcsm2022-concept-verification/requirements",
        json={"requested_amount": "2500000.00"},
    ).json()
    assert result["award"] == "2000000.00"  # capped at 200万 (表1-9)
    needs = {n["name"]: n for n in result["needs"]}
    assert needs["min_self_funds"]["minimum"] == "10000000.00"  # 4:1 of the amount requested
    assert needs["min_self_funds"]["article"] == "表1-9"
    assert needs["min_district_funds"]["minimum"] == "2000000.00"  # >= the municipal support


def test_requirements_without_district_matching(client: TestClient) -> None:
    result = client.post(
        "/v1/programs/stcsm2023-open-innovation/requirements",
        json={"requested_amount": "1000000.01"},
    ).json()
    assert [n["name"] for n in result["needs"]] == ["min_self_funds"]
    assert result["needs"][0]["minimum"] == "3000000.03"


def test_requirements_then_calculate_agree(client: TestClient) -> None:
    """Funding exactly the minimum the inverse names makes the ratio condition pass."""
    need = client.post(
        "/v1/programs/stcsm2023-tech-transfer/requirements", json={"requested_amount": "777777.77"}
    ).json()["needs"][0]["minimum"]
    body = client.get("/openapi.json").json()["paths"]["/v1/programs/{program_id}/check"]["post"]
    example = body["requestBody"]["content"]["application/json"]["examples"][
        "stcsm2023-tech-transfer"
    ]["value"]
    example = {**example, "requested_amount": "777777.77", "self_funds": need}
    result = client.post("/v1/programs/stcsm2023-tech-transfer/calculate", json=example).json()
    assert result["eligible"] is True and result["award"]["amount"] == "777777.77"
    example["self_funds"] = "777777.76"
    result = client.post("/v1/programs/stcsm2023-tech-transfer/calculate", json=example).json()
    assert result["eligible"] is False
    assert result["suggestions"] == {"max_requested_amount": "777777.76"}


def test_requirements_reject_bad_amounts(client: TestClient) -> None:
    response = client.post(
        "/v1/programs/stcsm2023-tech-transfer/requirements", json={"requested_amount": "1.001"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["path"] == "requested_amount"

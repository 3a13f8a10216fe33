"""The HTTP contract: shapes, errors, the committed OpenAPI document, offline docs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.examples import examples

ROOT = Path(__file__).resolve().parent.parent


def _example(program_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(examples()[program_id]["value"]))


def test_committed_openapi_matches_the_app(app: FastAPI) -> None:
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    live = json.loads(json.dumps(app.openapi()))
    assert committed == live, "openapi.yaml is stale: run python -m service.export_openapi"


def test_operation_ids_are_stable(app: FastAPI) -> None:
    ids = {op["operationId"] for path in app.openapi()["paths"].values() for op in path.values()}
    assert {
        "programs-check",
        "programs-calculate",
        "programs-list_programs",
        "health-healthz",
    } <= ids


def test_healthz_reports_the_rules_version(client: TestClient, app: FastAPI) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["rules_version"] == app.state.runtime.book.version
    assert body["engine"] == "durable_rules"


def test_program_list_has_articles_and_dates(client: TestClient) -> None:
    programs = {p["id"]: p for p in client.get("/v1/programs").json()}
    art19 = programs["ipa2022-art19"]
    assert art19["article"] == "第十九条"
    assert art19["policy"] == "ipa2022"
    assert (art19["effective_from"], art19["effective_to"]) == ("2022-11-09", "2023-12-31")


def test_program_detail_shows_parameters_and_conditions(client: TestClient) -> None:
    detail = client.get("/v1/programs/ipa2022-art20").json()
    params = {p["name"]: p for p in detail["parameters"]}
    assert params["loan_rate"]["value"] == "0.001" and params["loan_rate"]["article"] == "第二十条"
    assert params["pool"]["value"] == "5000000.00"
    assert params["disbursement_window"]["from"] == "2022-07-01"
    conditions = {c["id"]: c for c in detail["conditions"]}
    assert conditions["not-disqualified"]["article"] == "第二十六条"
    assert conditions["pledge-registered"]["applies_to"] == "loans"
    assert all(c["text_zh"] and c["text_en"] for c in detail["conditions"])


def test_unknown_program_is_404_in_both_languages(client: TestClient) -> None:
    for url in ("/v1/programs/ipa2099-art99", "/v1/programs/ipa2099-art99/check"):
        response = client.post(url, json={}) if url.endswith("check") else client.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "unknown_program"
        assert response.json()["message_zh"] and response.json()["message_en"]


@pytest.mark.parametrize("program_id", sorted(examples()))
def test_every_swagger_example_runs_as_it_is(client: TestClient, program_id: str) -> None:
    response = client.post(f"/v1/programs/{program_id}/calculate", json=_example(program_id))
    assert response.status_code == 200, response.text
    assert response.json()["eligible"] is True, response.json()["summary_en"]


def _post_raw(client: TestClient, body: str) -> Any:
    return client.post(
        "/v1/programs/ipa2022-art20/calculate",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )


def _loan_body(amount_json: str) -> str:
    body = _example("ipa2022-art20")
    body["loans"][0]["disbursed_amount"] = "__AMOUNT__"
    return json.dumps(body, ensure_ascii=False).replace('"__AMOUNT__"', amount_json)


@pytest.mark.parametrize(
    ("amount_json", "item_amount"),
    [
        ('"5000000.00"', "5000.00"),
        ("5000000", "5000.00"),
        ("4999999.99", "4999.99"),
        ('"999.99"', "0.99"),
    ],
)
def test_amounts_may_be_strings_integers_or_plain_decimals(
    client: TestClient, amount_json: str, item_amount: str
) -> None:
    response = _post_raw(client, _loan_body(amount_json))
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["amount"] == item_amount


@pytest.mark.parametrize(
    "amount_json",
    [
        '"-1.00"',
        "-1",
        '"100.001"',
        "100.001",
        "1e3",
        "1.5E+3",
        '"1e3"',
        "NaN",
        "Infinity",
        '"NaN"',
        "true",
        '""',
    ],
)
def test_bad_amounts_are_422_naming_the_field(client: TestClient, amount_json: str) -> None:
    response = _post_raw(client, _loan_body(amount_json))
    assert response.status_code == 422, response.text
    assert [d["path"] for d in response.json()["detail"]] == ["loans[0].disbursed_amount"]


def test_invalid_json_is_422_not_500(client: TestClient) -> None:
    response = _post_raw(client, '{"applicant": ')
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("body", ["[]", "null", '"text"', "42", "{}"])
def test_wrong_shapes_are_422(client: TestClient, body: str) -> None:
    assert _post_raw(client, body).status_code == 422


def test_oversized_body_is_413(client: TestClient, app: FastAPI) -> None:
    limit = app.state.runtime.settings.max_body_bytes
    response = _post_raw(client, '{"pad": "' + "x" * limit + '"}')
    assert response.status_code == 413


def test_amounts_in_responses_are_two_decimal_strings(client: TestClient) -> None:
    result = client.post(
        "/v1/programs/ipa2022-art20/calculate", json=_example("ipa2022-art20")
    ).json()
    assert result["award"]["amount"] == "17345.67"
    assert result["award"]["caps_applied"] == [
        {"rule": "pool", "article": "第二十条", "limit": "5000000.00", "binding": False}
    ]


def test_docs_are_served_without_internet(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/static/docs/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/docs/swagger-ui.css").status_code == 200

"""One error format for every 4xx and 5xx: RFC 9457 problem details in Chinese and English,
never a stack trace; bodies above the limit are refused before they are read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.roles import Role
from service.main import create_app
from tests.authsupport import make_key
from tests.dbsupport import example, settings_for, sqlite_url

CALCULATE = "/v1/programs/ipa2022-art19/calculate"
LIMIT = 4096


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, TestClient]]:
    folder = tmp_path_factory.mktemp("problems")
    app = create_app(settings_for(sqlite_url(folder), max_body_bytes=LIMIT, max_audit_bytes=LIMIT))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith(f"/problems/{code}")
    assert " / " in body["title"]  # Chinese / English
    assert body["message_zh"] and body["message_en"]
    assert body["instance"] == response.request.url.path
    assert "Traceback" not in response.text
    return body


def test_unknown_path_and_wrong_method(small: tuple[FastAPI, TestClient]) -> None:
    _, client = small
    problem(client.get("/v1/nothing-here"), 404, "no_such_path")
    body = problem(client.delete("/v1/programs"), 405, "method_not_allowed")
    assert body["message_zh"] == "该地址不支持此方法"


def test_unknown_program(small: tuple[FastAPI, TestClient]) -> None:
    _, client = small
    body = problem(client.post("/v1/programs/nope/calculate", json={}), 404, "unknown_program")
    assert body["program_id"] == "nope"


def test_422_names_each_bad_field_by_its_path(small: tuple[FastAPI, TestClient]) -> None:
    _, client = small
    application = example("ipa2022-art19")
    application["transactions"][0]["patent_number"] = "not a patent"
    application["transactions"][0]["contract_amont"] = "100.00"  # a typo is not ignored
    body = problem(client.post(CALCULATE, json=application), 422, "invalid_request")
    paths = {d["path"] for d in body["detail"]}
    assert {"transactions[0].patent_number", "transactions[0].contract_amont"} <= paths


def test_malformed_json_and_wrong_parameters(small: tuple[FastAPI, TestClient]) -> None:
    _, client = small
    json = {"content-type": "application/json"}
    problem(client.post(CALCULATE, content=b'{"applicant": ', headers=json), 422, "invalid_request")
    problem(client.post(CALCULATE, content=b"\xff\xfe", headers=json), 422, "invalid_request")
    body = problem(client.get("/v1/rounds/0", headers={"X-API-Key": "k"}), 401, "unauthenticated")
    assert body["detail"]


def test_a_declared_oversized_body_is_413_before_it_is_read(
    small: tuple[FastAPI, TestClient],
) -> None:
    _, client = small
    body = problem(client.post(CALCULATE, content=b"x" * (LIMIT + 1)), 413, "body_too_large")
    assert body["limit"] == LIMIT


def test_a_streamed_oversized_body_is_413(small: tuple[FastAPI, TestClient]) -> None:
    """No Content-Length (chunked): counted as it arrives, refused when it passes the limit."""
    _, client = small

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1024

    json = {"content-type": "application/json"}
    problem(client.post(CALCULATE, content=chunks(), headers=json), 413, "body_too_large")


def test_an_oversized_audit_upload_is_413(small: tuple[FastAPI, TestClient]) -> None:
    app, client = small
    key = make_key(app, Role.auditor)
    response = client.post(
        "/v1/audit",
        files={"file": ("awards.csv", b"program_id\n" + b"x\n" * LIMIT)},
        headers={"X-API-Key": key},
    )
    problem(response, 413, "body_too_large")


def test_an_unexpected_failure_is_a_500_problem_without_a_trace(
    small: tuple[FastAPI, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = small

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(type(app.state.runtime.book), "get", broken)
    response = client.post(CALCULATE, json=example("ipa2022-art19"))
    body = problem(response, 500, "internal_error")
    assert "secret internals" not in json.dumps(body)


def test_the_openapi_document_declares_problems(small: tuple[FastAPI, TestClient]) -> None:
    app, _ = small
    doc = app.openapi()
    calculate = doc["paths"]["/v1/programs/{program_id}/calculate"]["post"]
    for status in ("404", "413", "422", "429", "500"):
        content = calculate["responses"][status]["content"]
        assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    rounds = doc["paths"]["/v1/rounds"]["post"]
    assert {"401", "403"} <= set(rounds["responses"]) and rounds["x-roles"] == ["reviewer"]


def test_a_misspelt_query_parameter_is_422(small: tuple[FastAPI, TestClient]) -> None:
    app, client = small
    key = make_key(app, Role.admin)
    path = "/v1/admin/disqualifications"
    ok = client.get(f"{path}?include_removed=true", headers={"X-API-Key": key})
    assert ok.status_code == 200
    typo = client.get(f"{path}?include_remove=true", headers={"X-API-Key": key})
    body = problem(typo, 422, "invalid_request")
    assert [d["path"] for d in body["detail"]] == ["include_remove"]

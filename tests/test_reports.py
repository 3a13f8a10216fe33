"""Stage reports of stored applications (tests/performance/reports.yaml): append-only, each
evaluated and stamped with the rules version; disagreeing reports are warnings; the stored
application shows where its tranches stand."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.roles import Role
from tests.authsupport import make_key
from tests.casefiles import build_body
from tests.dbsupport import uscc
from tests.examples import examples

CASES = yaml.safe_load(
    (Path(__file__).parent / "performance" / "reports.yaml").read_text(encoding="utf-8")
)["cases"]
REPORT_KEYS = ("stage", "reported", "task_book", "reported_on", "period_ends_on")
_serial = itertools.count(70_000)


def _store(client: TestClient, program: str, case: dict[str, Any]) -> int:
    application = build_body(examples()[program]["value"], case)
    application["applicant"]["uscc"] = uscc(next(_serial))  # one application per guide year
    response = client.post(
        "/v1/applications", json={"program_id": program, "application": application}
    )
    assert response.status_code == 201, response.text
    application_id = int(response.json()["id"])
    if "approved" in case:
        reviewed = client.post(
            f"/v1/applications/{application_id}/approval", json={"approved": case["approved"]}
        )
        assert reviewed.status_code == 200, reviewed.text
    return application_id


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in CASES])
def test_stage_reports(client: TestClient, case: dict[str, Any]) -> None:
    application_id = _store(client, case["program"], case)
    path = f"/v1/applications/{application_id}/reports"
    for report in case["reports"]:
        response = client.post(path, json={k: report[k] for k in REPORT_KEYS if k in report})
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["rules_version"] and stored["received_at"]
        assert [w["rule"] for w in stored["warnings"]] == report["warnings"]
        disagreeing = [w for w in stored["warnings"] if "earlier_value" in w]
        assert [[w["earlier_value"], w["value"]] for w in disagreeing] == report.get("values", [])
        for w in disagreeing:
            assert w["earlier_value"] in w["message_zh"] and w["value"] in w["message_en"]
        if "passed" in report:
            assert stored["passed"] is report["passed"]
    listing = client.get(path).json()
    assert [r["stage"] for r in listing["reports"]] == [r["stage"] for r in case["reports"]]
    if "tranches" in case:
        shown = [[t["stage"], t["amount"], t["status"]] for t in listing["tranches"]]
        assert shown == case["tranches"]
        record = client.get(f"/v1/applications/{application_id}").json()
        assert [[t["stage"], t["amount"], t["status"]] for t in record["tranches"]] == shown


def test_reports_are_append_only_and_a_bad_one_is_not_stored(client: TestClient) -> None:
    application_id = _store(client, "stcsm2023-concept-verification", {"approved": True})
    path = f"/v1/applications/{application_id}/reports"
    first = client.post(path, json={"stage": "mid_term", "reported": {"results-listed": "20项"}})
    bad = client.post(path, json={"stage": "mid_term", "reported": {"results-listed": "20家"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["path"] == "reported.results-listed"
    second = client.post(path, json={"stage": "mid_term", "reported": {"results-listed": "25项"}})
    reports = client.get(path).json()["reports"]
    assert [r["id"] for r in reports] == [first.json()["id"], second.json()["id"]]
    assert reports[0]["reported"] == {"results-listed": "20项"}  # the earlier report is kept


def test_another_portals_application_reports_are_404(client: TestClient, app: FastAPI) -> None:
    application_id = _store(client, "stcsm2023-concept-verification", {})
    other = make_key(app, Role.portal, uscc(99_999))
    path = f"/v1/applications/{application_id}/reports"
    assert client.get(path, headers={"X-API-Key": other}).status_code == 404
    body = {"stage": "mid_term", "reported": {}}
    assert client.post(path, json=body, headers={"X-API-Key": other}).status_code == 404
    assert client.get("/v1/applications/999999/reports").status_code == 404

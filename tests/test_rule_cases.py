"""Every rule case in tests/cases/, through the HTTP API (calculate and check)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.casefiles import Case, load_cases

CASES = load_cases()


def _failed(reasons: list[dict[str, Any]]) -> dict[str, str]:
    return {r["rule"]: r["article"] for r in reasons if not r["passed"]}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}: {c.name}" for c in CASES])
def test_case(client: TestClient, case: Case) -> None:
    expect = case.expect
    response = client.post(f"/v1/programs/{case.program}/calculate", json=case.body)
    status = expect.get("status", 200)
    assert response.status_code == status, response.text
    result = response.json()
    if status == 422:
        paths = {d["path"] for d in result["detail"]}
        assert set(expect["errors"]) <= paths, paths
        return
    if status != 200:
        return

    # The verdict line comes first, in both languages.
    assert list(result)[:2] == ["summary_zh", "summary_en"]
    assert result["summary_zh"].startswith("符合条件" if result["eligible"] else "不符合条件")
    assert result["summary_en"].startswith("Eligible" if result["eligible"] else "Not eligible")
    for key in ("summary_zh", "summary_en"):
        if key in expect:
            assert result[key] == expect[key]
    if "eligible" in expect:
        assert result["eligible"] is expect["eligible"]
    assert result["rules_version"]
    if "failed" in expect:
        assert _failed(result["reasons"]) == (expect["failed"] or {})
    for reason in result["reasons"]:
        assert reason["article"] and reason["message_zh"] and reason["message_en"]
    award = result["award"]
    if "amount" in expect:
        assert award["amount"] == expect["amount"]
    if "uncapped_amount" in expect:
        assert award["uncapped_amount"] == expect["uncapped_amount"]
    if "caps_binding" in expect:
        assert [c["rule"] for c in award["caps_applied"] if c["binding"]] == expect["caps_binding"]
    if "items" in expect:
        assert len(result["items"]) == len(expect["items"])
        for got, want in zip(result["items"], expect["items"], strict=True):
            assert got["counted"] is want["counted"], got
            if "amount" in want:
                assert got["amount"] == want["amount"], got
            if "failed" in want:
                assert _failed(got["reasons"]) == (want["failed"] or {}), got
    if "warnings" in expect:
        assert [w["rule"] for w in result.get("warnings", [])] == expect["warnings"]
    if "priority" in expect:
        assert {p["rule"]: p["passed"] for p in result.get("priority", [])} == expect["priority"]
    if "disbursement" in expect:
        got_tranches = [
            [t["stage"], t["share"], t["amount"]] for t in result.get("disbursement", [])
        ]
        assert got_tranches == expect["disbursement"]
    if "suggestions" in expect:
        assert result.get("suggestions") == expect["suggestions"]

    # check answers the same question without the money.
    checked = client.post(f"/v1/programs/{case.program}/check", json=case.body).json()
    assert checked["eligible"] is result["eligible"]
    assert list(checked)[:2] == ["summary_zh", "summary_en"]
    if not result["eligible"]:
        assert checked["summary_zh"] == result["summary_zh"]
    assert checked["reasons"] == result["reasons"]
    assert "award" not in checked and "disbursement" not in checked

"""Decisions nobody can rewrite (issue 15): the server's clock decides when an application was
received (a portal's backdated ``submitted_at`` is refused; a reviewer's 代录 is recorded with its
key), approvals are a history, every change is in a hash-chained audit log whose tampering is
found, the last admin key stays, and portals can list their own applications."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service import auditlog
from service.auth.roles import Role
from service.clock import set_clock
from tests.authsupport import fixed_clock, make_key
from tests.dbsupport import bank, client_for, example, sqlite_url, uscc

LATE = "2024-01-05T10:00:00+08:00"  # after 第二十七条's window (to 2023-12-31)


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(sqlite_url(tmp_path)) as client:
        yield client


def at(api: TestClient, moment: str) -> None:
    set_clock(api.app, fixed_clock(datetime.fromisoformat(moment)))


def post_as_portal(api: TestClient, application: dict[str, Any]) -> Any:
    """A submission that leaves the server's clock as the test set it."""
    key = make_key(api.app, Role.portal, "*")  # type: ignore[arg-type]
    return api.post(
        "/v1/applications",
        json={"program_id": "ipa2022-art20", "application": application},
        headers={"X-API-Key": key},
        auth=None,
    )


# -- the server's clock ------------------------------------------------------------------------


def test_a_portals_backdated_submitted_at_is_refused(api: TestClient) -> None:
    at(api, LATE)
    body = bank(1, "10.00", "2023-12-20T10:00:00+08:00")  # inside the window, but sent in 2024
    response = post_as_portal(api, body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["path"] == "application.submitted_at"
    assert "5分钟" in detail["msg"] and "5 minutes" in detail["msg"]


def test_the_window_is_judged_on_when_the_service_received_it(api: TestClient) -> None:
    at(api, LATE)
    body = bank(2, "10.00", "2024-01-05T10:03:00+08:00")  # three minutes off: accepted
    response = post_as_portal(api, body)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["received_at"] == "2024-01-05T10:00:00+08:00"
    assert record["submitted_at"] == "2024-01-05T10:03:00+08:00"
    failed = [r["rule"] for r in record["evaluation"]["reasons"] if not r["passed"]]
    assert failed == ["within-validity"]


def test_a_reviewer_enters_a_paper_application_received_earlier(api: TestClient) -> None:
    at(api, LATE)
    body = bank(3, "10.00", "2023-12-20T10:00:00+08:00")
    response = api.post(
        "/v1/applications/paper",
        json={
            "program_id": "ipa2022-art20",
            "application": body,
            "received_at": "2023-12-20T16:00:00+08:00",
        },
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["channel"] == "paper"
    assert record["received_at"] == "2023-12-20T16:00:00+08:00"
    assert record["entered_at"] == LATE
    assert record["evaluation"]["eligible"] is True  # received inside the window
    log = api.get("/v1/admin/audit-log").json()["entries"]
    entry = next(e for e in log if e["action"] == "application.paper_entry")
    assert entry["actor"]["name"] == "test reviewer" and entry["actor"]["key_id"]
    assert entry["payload"]["received_at"] == "2023-12-20T08:00:00+00:00"
    future = api.post(
        "/v1/applications/paper",
        json={"program_id": "ipa2022-art20", "application": body, "received_at": "2024-02-01"},
    )
    assert future.status_code == 422 and future.json()["detail"][0]["path"] == "received_at"


# -- the approval history --------------------------------------------------------------------


def test_approvals_are_a_history_under_the_reviewers_key(api: TestClient) -> None:
    record = api.post(
        "/v1/applications", json={"program_id": "ipa2022-art20", "application": bank(4, "10.00")}
    ).json()
    path = f"/v1/applications/{record['id']}/approval"
    api.post(path, json={"approved": True, "note": "专家评审通过"})
    other = make_key(api.app, Role.reviewer, name="评审处 李四")  # type: ignore[arg-type]
    api.post(path, json={"approved": False, "note": "材料不实，撤回"}, headers={"X-API-Key": other})
    seen = api.get(f"/v1/applications/{record['id']}").json()
    assert [(a["approved"], a["by"]["name"], a["note"]) for a in seen["approvals"]] == [
        (True, "test reviewer", "专家评审通过"),
        (False, "评审处 李四", "材料不实，撤回"),
    ]
    assert seen["review"]["approved"] is False and seen["review"]["reviewed_by"] == "评审处 李四"


# -- the audit log ------------------------------------------------------------------------------


def test_the_audit_log_is_a_chain_and_a_tampered_row_is_found(
    api: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = api.post(
        "/v1/applications", json={"program_id": "ipa2022-art20", "application": bank(5, "10.00")}
    ).json()
    api.post(f"/v1/applications/{record['id']}/approval", json={"approved": True})
    round_id = api.post("/v1/rounds", json={"program_id": "ipa2022-art20", "name": "r"}).json()
    assert round_id
    entries = api.get("/v1/admin/audit-log", params={"limit": 1000}).json()["entries"]
    actions = [e["action"] for e in entries]
    assert {"api_key.create", "application.submit", "approval.approve", "round.open"} <= set(
        actions
    )
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    url = sqlite_url(tmp_path)
    assert auditlog.main(["verify"], url) == 0
    assert "intact" in capsys.readouterr().out

    target = next(e for e in entries if e["action"] == "approval.approve")["seq"]
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # someone rewrites the approval's name in the database
        conn.execute(
            sa.text("UPDATE audit_log SET actor_name = 'someone else' WHERE seq = :s"),
            {"s": target},
        )
    engine.dispose()
    assert auditlog.main(["verify"], url) == 1
    assert f"row {target}" in capsys.readouterr().err


def test_the_last_admin_key_cannot_be_revoked(api: TestClient) -> None:
    admins = [k for k in api.get("/v1/admin/keys").json() if k["role"] == "admin" and k["active"]]
    assert len(admins) == 1
    refused = api.post(f"/v1/admin/keys/{admins[0]['id']}/revocation")
    assert refused.status_code == 409 and refused.json()["code"] == "last_admin"
    spare = api.post("/v1/admin/keys", json={"name": "第二管理员", "role": "admin"}).json()
    assert api.post(f"/v1/admin/keys/{admins[0]['id']}/revocation").status_code == 200
    refused = api.post(
        f"/v1/admin/keys/{spare['id']}/revocation", headers={"X-API-Key": spare["key"]}
    )
    assert refused.status_code == 409


# -- portals find their applications -----------------------------------------------------------


def test_portals_list_their_own_applications_paged(api: TestClient) -> None:
    mine, theirs = uscc(70), uscc(71)
    for n in range(3):
        body = bank(700 + n, "10.00")
        body["applicant"]["uscc"] = mine
        api.post("/v1/applications", json={"program_id": "ipa2022-art20", "application": body})
    body = bank(71, "10.00")
    api.post("/v1/applications", json={"program_id": "ipa2022-art20", "application": body})
    key = make_key(api.app, Role.portal, mine)  # type: ignore[arg-type]
    first = api.get("/v1/applications", params={"limit": 2}, headers={"X-API-Key": key}).json()
    assert [i["applicant_uscc"] for i in first["items"]] == [mine, mine]
    rest = api.get(
        "/v1/applications",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers={"X-API-Key": key},
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    everyone = api.get("/v1/applications", params={"applicant_uscc": theirs}).json()
    assert [i["applicant_uscc"] for i in everyone["items"]] == [theirs]  # a reviewer sees all
    assert everyone["items"][0]["status"] == "submitted"
    assert example("ipa2022-art20")  # the examples stay valid bodies

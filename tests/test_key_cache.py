"""The API keys and the 第二十六条 list served from memory (service.db.cache): a change is seen at
once by the process that made it and within a second by every other process on the database;
and each key's own rate limit, by role."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from service.auth.roles import Role
from service.main import create_app
from tests.authsupport import make_key
from tests.dbsupport import example, settings_for, sqlite_url

DISQUALIFIED = "91310000MA1FL9Y9Y8"


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long ``condition`` took to hold; fails past ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_key_revoked_in_one_process_is_refused_by_another_within_a_second(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    first, second = create_app(settings_for(url)), create_app(settings_for(url))
    with TestClient(first) as a, TestClient(second) as b:
        admin = make_key(first, Role.admin)
        reviewer = make_key(first, Role.reviewer, name="to revoke")
        key_id = next(
            k["id"]
            for k in a.get("/v1/admin/keys", headers={"X-API-Key": admin}).json()
            if k["name"] == "to revoke"
        )
        as_reviewer = {"X-API-Key": reviewer}
        _within(1.0, lambda: b.get("/v1/rounds/1", headers=as_reviewer).status_code == 404)
        revoked = a.post(f"/v1/admin/keys/{key_id}/revocation", headers={"X-API-Key": admin})
        assert revoked.status_code == 200
        # The process that revoked it refuses it at once; the other within the poll (0.5 s).
        assert a.get("/v1/rounds/1", headers=as_reviewer).status_code == 401
        took = _within(1.0, lambda: b.get("/v1/rounds/1", headers=as_reviewer).status_code == 401)
        assert took < 1.0


def test_the_disqualification_list_is_seen_by_every_process(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    first, second = create_app(settings_for(url)), create_app(settings_for(url))
    body = example("ipa2022-art19")
    body["applicant"]["uscc"] = DISQUALIFIED
    check = "/v1/programs/ipa2022-art19/check"
    with TestClient(first) as a, TestClient(second) as b:
        admin = {"X-API-Key": make_key(first, Role.admin)}
        assert b.post(check, json=body).json()["eligible"] is True
        added = a.post(
            "/v1/admin/disqualifications",
            headers=admin,
            json={
                "uscc": DISQUALIFIED,
                "reason": "虚假交易",
                "decided_on": "2023-05-10",
                "added_by": "tests",
            },
        )
        assert added.status_code == 201
        assert a.post(check, json=body).json()["eligible"] is False  # at once, here
        _within(1.0, lambda: b.post(check, json=body).json()["eligible"] is False)
        entry = added.json()["id"]
        removal = {"removed_by": "tests", "reason": "复议撤销"}
        a.post(f"/v1/admin/disqualifications/{entry}/removal", headers=admin, json=removal)
        assert a.post(check, json=body).json()["eligible"] is True
        _within(1.0, lambda: b.post(check, json=body).json()["eligible"] is True)


def test_a_stale_cache_is_not_trusted(tmp_path: Path) -> None:
    """With no fresh snapshot (the database stopped answering the poll) keys are looked up."""
    app = create_app(settings_for(sqlite_url(tmp_path)))
    with TestClient(app) as client:
        key = make_key(app, Role.reviewer)
        app.state.runtime.access.stop()
        app.state.runtime.access._snapshot = None  # as after STALE_AFTER_SECONDS
        assert client.get("/v1/rounds/1", headers={"X-API-Key": key}).status_code == 404
        assert client.get("/v1/rounds/1", headers={"X-API-Key": "sk_nope"}).status_code == 401


def test_each_key_has_its_own_rate_limit_by_role(tmp_path: Path) -> None:
    settings = settings_for(
        sqlite_url(tmp_path), portal_requests_per_minute=3, reviewer_requests_per_minute=5
    )
    app = create_app(settings)
    with TestClient(app) as client:
        portal, other_portal = make_key(app, Role.portal, "*"), make_key(app, Role.portal, "*")
        reviewer = make_key(app, Role.reviewer)

        def statuses(key: str, n: int) -> list[int]:
            headers = {"X-API-Key": key}
            return [client.get("/v1/programs", headers=headers).status_code for _ in range(n)]

        assert statuses(portal, 4) == [200, 200, 200, 429]
        assert statuses(other_portal, 3) == [200] * 3  # a key's limit is its own
        assert statuses(reviewer, 6) == [200] * 5 + [429]  # and its role's
        limited = client.get("/v1/rounds/1", headers={"X-API-Key": reviewer})  # every route
        assert limited.status_code == 429
        problem = limited.json()
        assert problem["code"] == "rate_limited" and "API key" in problem["detail"]
        assert int(limited.headers["retry-after"]) >= 1


def test_metrics_can_be_put_behind_a_role(tmp_path: Path) -> None:
    app = create_app(settings_for(sqlite_url(tmp_path), metrics_role="admin"))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        reviewer = make_key(app, Role.reviewer)
        assert client.get("/metrics", headers={"X-API-Key": reviewer}).status_code == 403
        admin = make_key(app, Role.admin)
        scraped = client.get("/metrics", headers={"X-API-Key": admin})
        assert scraped.status_code == 200 and "http_requests_total" in scraped.text

"""Who may do what: every operation of the API × every caller (anonymous, two portals bound to
different applicants, reviewer, auditor, admin), as a table a reviewer can read.

401: no key, or an unknown or revoked one. 403: a role that may not. 404: another portal's
application (its existence is not confirmed). The table must name every operation the app
serves, so a new route cannot ship without saying who may call it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.cli import main as keys_cli
from service.auth.roles import Role
from service.clock import set_clock
from service.db.models import ApiKey
from service.main import create_app
from tests.authsupport import fixed_clock, make_key
from tests.dbsupport import bank, example, settings_for, sqlite_url, uscc

APPLICANT_A = uscc(9001)
APPLICANT_B = uscc(9002)
FIXTURES = Path(__file__).parent / "audit_fixtures"
CALLERS = ("anonymous", "portal_a", "portal_b", "reviewer", "auditor", "admin")
_serial = itertools.count(1)


@dataclass
class World:
    client: TestClient
    app: FastAPI
    keys: dict[str, str]
    application_id: int  # portal_a's application (for APPLICANT_A)
    round_id: int

    def headers(self, caller: str) -> dict[str, str]:
        return {} if caller == "anonymous" else {"X-API-Key": self.keys[caller]}

    def as_(
        self, caller: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        return self.client.request(
            method, path, headers={**self.headers(caller), **(headers or {})}, **kw
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("access")
    app = create_app(settings_for(sqlite_url(folder), engine="python"))
    with TestClient(app) as client:
        # The portals here send bank()'s submitted_at: the server's clock agrees with them.
        set_clock(app, fixed_clock(datetime.fromisoformat("2023-07-20T09:30:00+08:00")))
        keys = {
            "portal_a": make_key(app, Role.portal, APPLICANT_A),
            "portal_b": make_key(app, Role.portal, APPLICANT_B),
            "reviewer": make_key(app, Role.reviewer),
            "auditor": make_key(app, Role.auditor),
            "admin": make_key(app, Role.admin),
        }
        w = World(client, app, keys, 0, 0)
        submitted = w.as_("portal_a", "POST", "/v1/applications", json=_submission(APPLICANT_A))
        assert submitted.status_code == 201, submitted.text
        w.application_id = submitted.json()["id"]
        opened = w.as_("reviewer", "POST", "/v1/rounds", json=_round())
        assert opened.status_code == 201, opened.text
        w.round_id = opened.json()["id"]
        yield w


def _submission(applicant: str) -> dict[str, Any]:
    body = bank(next(_serial), "100.00")
    body["applicant"]["uscc"] = applicant
    return {"program_id": "ipa2022-art20", "application": body}


def _round() -> dict[str, Any]:
    return {"program_id": "ipa2022-art20", "name": f"第{next(_serial)}批"}


def _listing_body() -> dict[str, str]:
    """A 第二十六条 entry for an organisation never listed before."""
    return {
        "uscc": uscc(50_000 + next(_serial)),
        "reason": "测试",
        "decided_on": "2023-05-10",
        "added_by": "tests",
    }


def _listing(w: World) -> int:
    """A fresh 第二十六条 entry (for a removal to remove)."""
    response = w.as_("admin", "POST", "/v1/admin/disqualifications", json=_listing_body())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _paper() -> dict[str, Any]:
    return {**_submission(APPLICANT_A), "received_at": "2023-07-01T10:00:00+08:00"}


def _allocated_round(w: World) -> int:
    """A round with one approved application, allocated (for a closure to close)."""
    round_id = w.as_("reviewer", "POST", "/v1/rounds", json=_round()).json()["id"]
    body = {**_submission(APPLICANT_A), "round_id": round_id}
    app_id = w.as_("portal_a", "POST", "/v1/applications", json=body).json()["id"]
    w.as_("reviewer", "POST", f"/v1/applications/{app_id}/approval", json={"approved": True})
    allocated = w.as_("reviewer", "POST", f"/v1/rounds/{round_id}/allocate")
    assert allocated.status_code == 200, allocated.text
    return int(round_id)


def _spare_key(w: World) -> int:
    response = w.as_("admin", "POST", "/v1/admin/keys", json={"name": "spare", "role": "auditor"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@dataclass(frozen=True)
class Op:
    """One operation: how to call it, and what each caller gets."""

    method: str
    path: str  # as the OpenAPI document names it
    expect: dict[str, int]
    call: Callable[[World, str], Any]


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


def only(allowed: dict[str, int]) -> dict[str, int]:
    """401 anonymous, 403 for keys of other roles, ``allowed`` for the rest."""
    return {"anonymous": 401, **dict.fromkeys(CALLERS[1:], 403), **allowed}


ART19 = "/v1/programs/ipa2022-art19"
APP = "/v1/applications/{application_id}"
ROUND = "/v1/rounds/{round_id}"

OPS = [
    # The open routes: anyone, anonymous callers rate-limited.
    Op("GET", "/healthz", everyone(200), lambda w, c: w.as_(c, "GET", "/healthz")),
    Op("GET", "/readyz", everyone(200), lambda w, c: w.as_(c, "GET", "/readyz")),
    Op("GET", "/v1/programs", everyone(200), lambda w, c: w.as_(c, "GET", "/v1/programs")),
    Op("GET", "/v1/programs/{program_id}", everyone(200), lambda w, c: w.as_(c, "GET", ART19)),
    *(
        Op(
            "POST",
            f"/v1/programs/{{program_id}}/{verb}",
            everyone(200),
            lambda w, c, verb=verb: w.as_(
                c, "POST", f"{ART19}/{verb}", json=example("ipa2022-art19")
            ),
        )
        for verb in ("check", "calculate")
    ),
    Op(
        "POST",
        "/v1/programs/{program_id}/requirements",
        everyone(200),
        lambda w, c: w.as_(
            c,
            "POST",
            "/v1/programs/stcsm2022-concept-verification/requirements",
            json={"requested_amount": "2000000.00"},
        ),
    ),
    Op(
        "POST",
        "/v1/performance/targets",
        everyone(200),
        lambda w, c: w.as_(
            c,
            "POST",
            "/v1/performance/targets",
            json={"indicators": [{"name": "n", "target": "≥48.00(件)", "actual": "50件"}]},
        ),
    ),
    Op(
        "POST",
        "/v1/performance/score",
        everyone(200),
        lambda w, c: w.as_(
            c,
            "POST",
            "/v1/performance/score",
            json={
                "rows": [
                    {
                        "level1": "决策",
                        "level2": "a",
                        "name": "b",
                        "weight": "100",
                        "score": "84.31",
                    }
                ]
            },
        ),
    ),
    Op(
        "POST",
        "/v1/programs/{program_id}/acceptance",
        everyone(200),
        lambda w, c: w.as_(
            c,
            "POST",
            "/v1/programs/stcsm2023-concept-verification/acceptance",
            json={
                "application": example("stcsm2023-concept-verification"),
                "stage": "acceptance",
                "reported": {"results-listed": "50项"},
            },
        ),
    ),
    Op(
        "POST",
        "/v1/match",
        everyone(200),
        lambda w, c: w.as_(
            c, "POST", "/v1/match", json={"applicant": {"entity_type": "university"}}
        ),
    ),
    # Applications: portals for their own applicants; reviewers read and decide.
    Op(
        "POST",
        "/v1/applications",
        only({"portal_a": 201}),  # portal_b is not bound to APPLICANT_A: 403
        lambda w, c: w.as_(c, "POST", "/v1/applications", json=_submission(APPLICANT_A)),
    ),
    Op(
        "POST",
        "/v1/applications/paper",
        only({"reviewer": 201}),  # 代录: reviewers enter paper applications
        lambda w, c: w.as_(c, "POST", "/v1/applications/paper", json=_paper()),
    ),
    Op(
        "GET",
        "/v1/applications",
        only({"portal_a": 200, "portal_b": 200, "reviewer": 200}),  # each sees its own
        lambda w, c: w.as_(c, "GET", "/v1/applications"),
    ),
    Op(
        "GET",
        APP,
        only({"portal_a": 200, "portal_b": 404, "reviewer": 200}),
        lambda w, c: w.as_(c, "GET", f"/v1/applications/{w.application_id}"),
    ),
    Op(
        "POST",
        APP + "/evaluations",
        only({"portal_a": 201, "portal_b": 404, "reviewer": 201}),
        lambda w, c: w.as_(c, "POST", f"/v1/applications/{w.application_id}/evaluations"),
    ),
    Op(
        "POST",
        APP + "/approval",
        only({"reviewer": 200}),
        lambda w, c: w.as_(
            c, "POST", f"/v1/applications/{w.application_id}/approval", json={"approved": True}
        ),
    ),
    Op(
        "POST",
        APP + "/reports",
        only({"portal_a": 201, "portal_b": 404, "reviewer": 201}),
        lambda w, c: w.as_(
            c,
            "POST",
            f"/v1/applications/{w.application_id}/reports",
            json={"stage": "acceptance", "reported": {}},
        ),
    ),
    Op(
        "GET",
        APP + "/reports",
        only({"portal_a": 200, "portal_b": 404, "reviewer": 200}),
        lambda w, c: w.as_(c, "GET", f"/v1/applications/{w.application_id}/reports"),
    ),
    # Rounds: reviewers.
    Op(
        "POST",
        "/v1/rounds",
        only({"reviewer": 201}),
        lambda w, c: w.as_(c, "POST", "/v1/rounds", json=_round()),
    ),
    Op(
        "GET",
        ROUND,
        only({"reviewer": 200}),
        lambda w, c: w.as_(c, "GET", f"/v1/rounds/{w.round_id}"),
    ),
    Op(
        "POST",
        ROUND + "/allocate",
        only({"reviewer": 200}),
        lambda w, c: w.as_(c, "POST", f"/v1/rounds/{w.round_id}/allocate"),
    ),
    Op(
        "POST",
        ROUND + "/closure",
        only({"reviewer": 200}),
        lambda w, c: w.as_(c, "POST", f"/v1/rounds/{_allocated_round(w)}/closure"),
    ),
    # The audit: auditors.
    Op(
        "POST",
        "/v1/audit",
        only({"auditor": 200}),
        lambda w, c: w.as_(
            c,
            "POST",
            "/v1/audit",
            content=(FIXTURES / "awards.jsonl").read_bytes(),
            headers={"content-type": "application/x-ndjson"},
        ),
    ),
    # The 第二十六条 list and the keys: admins.
    Op(
        "GET",
        "/v1/admin/disqualifications",
        only({"admin": 200}),
        lambda w, c: w.as_(c, "GET", "/v1/admin/disqualifications"),
    ),
    Op(
        "POST",
        "/v1/admin/disqualifications",
        only({"admin": 201}),
        lambda w, c: w.as_(c, "POST", "/v1/admin/disqualifications", json=_listing_body()),
    ),
    Op(
        "POST",
        "/v1/admin/disqualifications/{entry_id}/removal",
        only({"admin": 200}),
        lambda w, c: w.as_(
            c,
            "POST",
            f"/v1/admin/disqualifications/{_listing(w)}/removal",
            json={"removed_by": "tests", "reason": "复议撤销"},
        ),
    ),
    Op(
        "GET",
        "/v1/admin/audit-log",
        only({"admin": 200}),
        lambda w, c: w.as_(c, "GET", "/v1/admin/audit-log"),
    ),
    Op(
        "GET",
        "/v1/admin/keys",
        only({"admin": 200}),
        lambda w, c: w.as_(c, "GET", "/v1/admin/keys"),
    ),
    Op(
        "POST",
        "/v1/admin/keys",
        only({"admin": 201}),
        lambda w, c: w.as_(c, "POST", "/v1/admin/keys", json={"name": "n", "role": "reviewer"}),
    ),
    Op(
        "GET",
        "/v1/admin/work",
        only({"admin": 200}),
        lambda w, c: w.as_(c, "GET", "/v1/admin/work"),
    ),
    Op(
        "POST",
        "/v1/admin/work/{job_id}/cancellation",
        only({"admin": 404}),  # no large evaluation in flight
        lambda w, c: w.as_(c, "POST", "/v1/admin/work/999/cancellation"),
    ),
    Op(
        "POST",
        "/v1/admin/keys/{key_id}/revocation",
        only({"admin": 200}),
        lambda w, c: w.as_(c, "POST", f"/v1/admin/keys/{_spare_key(w)}/revocation"),
    ),
]


def test_the_table_names_every_operation(world: World) -> None:
    served = {
        (method.upper(), path)
        for path, item in world.app.openapi()["paths"].items()
        for method in item
    }
    served.add(("GET", "/readyz"))  # liveness routes may stay out of the document
    assert {(op.method, op.path) for op in OPS} >= served
    assert served >= {(op.method, op.path) for op in OPS}


@pytest.mark.parametrize(
    ("op", "caller"),
    [(op, caller) for op in OPS for caller in CALLERS],
    ids=[f"{op.method} {op.path} as {caller}" for op in OPS for caller in CALLERS],
)
def test_who_may_do_what(world: World, op: Op, caller: str) -> None:
    response = op.call(world, caller)
    assert response.status_code == op.expect[caller], response.text
    if response.status_code >= 400:
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == response.status_code
        assert problem["message_zh"] and problem["message_en"]


def test_another_portals_application_looks_like_a_missing_one(world: World) -> None:
    theirs = world.as_("portal_b", "GET", f"/v1/applications/{world.application_id}").json()
    missing = world.as_("portal_b", "GET", "/v1/applications/999999").json()
    for body in (theirs, missing):
        body.pop("instance"), body.pop("id"), body.pop("detail"), body.pop("message_zh")
        body.pop("message_en")
    assert theirs == missing


def test_an_unknown_or_revoked_key_is_401(world: World) -> None:
    key = make_key(world.app, Role.reviewer)
    path = f"/v1/applications/{world.application_id}"
    assert world.client.get(path, headers={"X-API-Key": key}).status_code == 200
    key_id = world.as_("admin", "GET", "/v1/admin/keys").json()[-1]["id"]
    revoked = world.as_("admin", "POST", f"/v1/admin/keys/{key_id}/revocation")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    refused = world.client.get(path, headers={"X-API-Key": key})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("ApiKey")
    assert world.client.get(path, headers={"X-API-Key": key + "x"}).status_code == 401
    # A wrong key on an open route is refused too, not quietly treated as anonymous.
    assert world.client.get("/v1/programs", headers={"X-API-Key": "sk_nope"}).status_code == 401


def test_keys_are_stored_hashed_and_shown_once(world: World) -> None:
    created = world.as_("admin", "POST", "/v1/admin/keys", json={"name": "x", "role": "auditor"})
    key = created.json()["key"]
    with world.app.state.runtime.db.transaction(write=False) as session:
        row = session.get(ApiKey, created.json()["id"])
        assert row is not None
        assert key not in repr(row.model_dump()) and row.key_hash != key
    listed = world.as_("admin", "GET", "/v1/admin/keys").json()
    assert all("key" not in entry and "key_hash" not in entry for entry in listed)


def test_idempotency_keys_are_each_portals_own(world: World) -> None:
    """The same Idempotency-Key from two portals is two applications, not a replay of the
    other portal's (nor a 409 that would reveal it)."""
    a = world.as_(
        "portal_a",
        "POST",
        "/v1/applications",
        json=_submission(APPLICANT_A),
        headers={"Idempotency-Key": "shared-1"},
    )
    b = world.as_(
        "portal_b",
        "POST",
        "/v1/applications",
        json=_submission(APPLICANT_B),
        headers={"Idempotency-Key": "shared-1"},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert b.headers["Idempotent-Replayed"] == "false"
    assert a.json()["idempotency_key"] == b.json()["idempotency_key"] == "shared-1"


def test_a_portal_for_every_applicant(world: World) -> None:
    key = make_key(world.app, Role.portal, "*")
    response = world.client.post(
        "/v1/applications", json=_submission(uscc(9999)), headers={"X-API-Key": key}
    )
    assert response.status_code == 201, response.text
    mine = world.client.get(f"/v1/applications/{world.application_id}", headers={"X-API-Key": key})
    assert mine.status_code == 200


def test_a_portal_key_needs_applicants_and_others_have_none(world: World) -> None:
    bad = [
        {"name": "p", "role": "portal"},
        {"name": "p", "role": "portal", "applicants": ["91310000MA1FL8XQ3B"]},
        {"name": "r", "role": "reviewer", "applicants": [APPLICANT_A]},
        {"name": "r", "role": "superuser"},
    ]
    for body in bad:
        response = world.as_("admin", "POST", "/v1/admin/keys", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["path"].startswith(("applicants", "role"))


def test_anonymous_callers_are_rate_limited_and_key_holders_are_not(tmp_path: Path) -> None:
    app = create_app(settings_for(sqlite_url(tmp_path), anonymous_requests_per_minute=3))
    with TestClient(app) as client:
        statuses = [client.get("/v1/programs").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/v1/programs")
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        key = make_key(app, Role.auditor)
        assert all(
            client.get("/v1/programs", headers={"X-API-Key": key}).status_code == 200
            for _ in range(5)
        )
        assert client.get("/healthz").status_code == 200  # liveness is never limited


def _anonymous_statuses(client: TestClient, forwarded_for: list[str]) -> list[int]:
    return [
        client.get("/v1/programs", headers={"X-Forwarded-For": ip}).status_code
        for ip in forwarded_for
    ]


def test_x_forwarded_for_from_an_untrusted_client_does_not_change_its_address(
    tmp_path: Path,
) -> None:
    """No proxy is trusted by default: a local client inventing addresses stays one bucket."""
    app = create_app(settings_for(sqlite_url(tmp_path), anonymous_requests_per_minute=3))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        invented = [f"203.0.113.{n}" for n in range(4)]
        assert _anonymous_statuses(client, invented) == [200, 200, 200, 429]


def test_x_forwarded_for_is_believed_only_from_the_trusted_proxies(tmp_path: Path) -> None:
    settings = settings_for(
        sqlite_url(tmp_path), anonymous_requests_per_minute=3, trusted_proxies="10.0.0.0/8"
    )
    app = create_app(settings)
    with TestClient(app, client=("10.1.2.3", 50000)) as proxy:
        # Each caller behind the proxy has its own bucket...
        assert _anonymous_statuses(proxy, [f"203.0.113.{n}" for n in range(5)]) == [200] * 5
        assert _anonymous_statuses(proxy, ["198.51.100.1"] * 4) == [200, 200, 200, 429]
    with TestClient(app, client=("192.0.2.9", 50000)) as stranger:
        # ...but a client that is not a trusted proxy is limited by its own address.
        invented = [f"203.0.113.{n}" for n in range(10, 14)]
        assert _anonymous_statuses(stranger, invented) == [200, 200, 200, 429]


def test_the_key_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(sqlite_url(tmp_path))
    run = lambda *argv: keys_cli(list(argv), settings)  # noqa: E731
    assert run("create", "--role", "portal", "--name", "p", "--applicant", APPLICANT_A) == 0
    created = capsys.readouterr().out
    assert '"key": "sk_' in created and APPLICANT_A in created
    assert run("create", "--role", "portal", "--name", "p") == 2  # no applicant
    assert "applicants" in capsys.readouterr().err
    assert run("revoke", "1", "--by", "tests") == 0
    assert '"active": false' in capsys.readouterr().out
    assert run("revoke", "1") == 2
    assert run("list") == 0
    assert '"key"' not in capsys.readouterr().out

"""API keys for the tests: one key per role, made in the app's own database, and an httpx auth
that sends the key of the role each endpoint needs (tests about stored data stay about data;
tests/test_access.py checks who may do what, with explicit keys)."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from service.auth import keys
from service.auth.roles import ALL_APPLICANTS, Role
from service.clock import set_clock


def make_key(app: FastAPI, role: Role, *applicants: str, name: str | None = None) -> str:
    with app.state.runtime.db.transaction() as session:
        _, key = keys.create(
            session, keys.KeyRequest(name or f"test {role}", role, applicants, "tests")
        )
    return key


def role_keys(app: FastAPI) -> dict[Role, str]:
    """A key per role; the portal acts for every applicant."""
    return {
        role: make_key(app, role, *([ALL_APPLICANTS] if role is Role.portal else []))
        for role in Role
    }


def role_for(method: str, path: str) -> Role | None:
    """The role that does this in the bureau's workflow (None: an open route)."""
    if path.startswith("/v1/admin"):
        return Role.admin
    if path.startswith("/v1/audit"):
        return Role.auditor
    if method == "POST" and path == "/v1/applications":
        return Role.portal
    if path.startswith(("/v1/applications", "/v1/rounds")):
        return Role.reviewer
    return None


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def portal_clock(app: FastAPI, request: httpx.Request) -> None:
    """The server's clock at the application's own ``submitted_at``: the tests' portals send
    applications at the moment they say (tests of the clock itself set it explicitly)."""
    if request.method != "POST" or request.url.path != "/v1/applications":
        return
    try:
        sent = json.loads(request.content)["application"]["submitted_at"]
        moment = datetime.fromisoformat(sent)
        moment.astimezone(UTC)  # a time no clock shows (year 9999 at -12:00): not set
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
        return  # not an application the test means to store (hostile bodies)
    if moment.tzinfo is not None:
        set_clock(app, fixed_clock(moment))


class RoleAuth(httpx.Auth):
    """Adds the X-API-Key of the role the request needs, unless the test sent one itself; with
    ``app``, sets its clock to each submitted application's ``submitted_at`` (portal_clock)."""

    requires_request_body = True

    def __init__(self, by_role: dict[Role, str], app: FastAPI | None = None) -> None:
        self.by_role = by_role
        self.app = app

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        role = role_for(request.method, request.url.path)
        if role is not None and "x-api-key" not in request.headers:
            request.headers["X-API-Key"] = self.by_role[role]
        if self.app is not None:
            portal_clock(self.app, request)
        yield request


def authorise(client: httpx.Client, app: FastAPI) -> None:
    """Call once the app has started (its database is migrated)."""
    client.auth = RoleAuth(role_keys(app), app)

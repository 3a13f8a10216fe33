"""Schemathesis against the committed ``openapi.yaml``: every operation, generated requests
(valid and invalid), each sent with a key of a role the operation admits. Nothing a client
sends may cause a 5xx, and every response must match the status codes, content types and
schemas the document declares. Bounded and derandomized, so it stays fast and repeatable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.transport.asgi import ASGI_TRANSPORT
from schemathesis.transport.requests import REQUESTS_TRANSPORT, text_serializer

from service.auth.roles import ALL_APPLICANTS, Role
from service.main import create_app
from tests.authsupport import make_key
from tests.dbsupport import settings_for, sqlite_url

OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"
EXAMPLES_PER_OPERATION = 30
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]

schema = schemathesis.openapi.from_path(OPENAPI)
# The audit takes JSON Lines as its body: sent as the text it is.
for transport in (REQUESTS_TRANSPORT, ASGI_TRANSPORT):
    transport.serializer("application/x-ndjson")(text_serializer)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The app, started (migrated) and keyed; schemathesis calls it in-process (ASGI)."""
    folder = tmp_path_factory.mktemp("fuzz")
    app = create_app(settings_for(sqlite_url(folder)))
    with TestClient(app):
        keys = {
            role.value: make_key(app, role, *([ALL_APPLICANTS] if role is Role.portal else []))
            for role in Role
        }
        yield app, keys


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_breaks_the_api(
    case: schemathesis.Case, served: tuple[FastAPI, dict[str, str]]
) -> None:
    app, keys = served
    roles = case.operation.definition.raw.get("x-roles")
    headers = {"X-API-Key": keys[roles[0]]} if roles else {}
    response = case.call(app=app, headers=headers)
    case.validate_response(response, checks=CHECKS)

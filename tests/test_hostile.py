"""Hostile input never makes a 5xx: every JSON route × every kind of hostile body, as a table.

Each case says what the service must answer (the status and, for a 422, the path it names):
bodies nested too deep, numbers too long for Python, timestamps with no UTC equivalent, bytes
that are not UTF-8, keys given twice, bodies that are not JSON, names that hide control or
bidirectional characters.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.authsupport import authorise
from tests.dbsupport import example, settings_for, sqlite_url
from tests.test_problems import problem

JSON = {"content-type": "application/json"}
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Route:
    """A JSON route, a valid body for it, and the fields the hostile cases replace."""

    name: str
    path: str
    body: Callable[[], dict[str, Any]]
    field: Loc  # any field: replaced by a too-long number
    text: Loc | None = None  # a name or other one-line text
    timestamp: Loc | None = None


def _art19() -> dict[str, Any]:
    return example("ipa2022-art19")


ROUTES = [
    Route(
        "check",
        "/v1/programs/ipa2022-art19/check",
        _art19,
        ("transactions", 0, "cnipa_recorded"),
        ("applicant", "name"),
        ("submitted_at",),
    ),
    Route(
        "calculate",
        "/v1/programs/ipa2022-art19/calculate",
        _art19,
        ("applicant", "is_sme"),
        ("transactions", 0, "counterparty", "name"),
        ("submitted_at",),
    ),
    Route(
        "requirements",
        "/v1/programs/stcsm2022-concept-verification/requirements",
        lambda: {"requested_amount": "2000000.00"},
        ("requested_amount",),
    ),
    Route(
        "submit",
        "/v1/applications",
        lambda: {"program_id": "ipa2022-art19", "application": _art19()},
        ("application", "transactions", 0, "kind"),
        ("application", "applicant", "name"),
        ("application", "submitted_at"),
    ),
    Route(
        "approval",
        "/v1/applications/1/approval",
        lambda: {"approved": True, "note": "评审专家组一致同意"},
        ("approved",),
    ),
    Route(
        "rounds",
        "/v1/rounds",
        lambda: {"program_id": "ipa2022-art20", "name": "2023年第一批"},
        ("program_id",),
        ("name",),
    ),
    Route(
        "disqualify",
        "/v1/admin/disqualifications",
        lambda: {
            "uscc": "91310000MA1FL9Y9Y8",
            "reason": "编造虚假许可交易",
            "decided_on": "2023-05-10",
            "added_by": "市知识产权局运营处",
        },
        ("decided_on",),
        ("added_by",),
    ),
    Route(
        "removal",
        "/v1/admin/disqualifications/1/removal",
        lambda: {"removed_by": "市知识产权局运营处", "reason": "行政复议撤销原决定"},
        ("reason",),
        ("removed_by",),
    ),
    Route(
        "targets",
        "/v1/performance/targets",
        lambda: {"indicators": [{"name": "专利转化数", "target": "≥20件", "actual": "23件"}]},
        ("indicators", 0, "actual"),
    ),
    Route(
        "score",
        "/v1/performance/score",
        lambda: {
            "rows": [
                {
                    "level1": "决策",
                    "level2": "设立依据",
                    "name": "设立依据充分性",
                    "weight": "100",
                    "score": "90",
                }
            ]
        },
        ("rows", 0, "weight"),
    ),
    Route(
        "acceptance",
        "/v1/programs/stcsm2023-concept-verification/acceptance",
        lambda: {
            "application": example("stcsm2023-concept-verification"),
            "stage": "acceptance",
            "reported": {},
        },
        ("stage",),
        ("application", "applicant", "name"),
        ("application", "submitted_at"),
    ),
    Route(
        "keys",
        "/v1/admin/keys",
        lambda: {"name": "运营处 评审组", "role": "reviewer"},
        ("role",),
        ("name",),
    ),
]


def path_of(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def put(body: dict[str, Any], loc: Loc, value: Any) -> dict[str, Any]:
    target: Any = body
    for part in loc[:-1]:
        target = target[part]
    target[loc[-1]] = value
    return body


def raw(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


DIGITS = "1" * 4301  # one above Python's int-digits limit
MARK = "\u0000"  # replaced in the serialised body by a raw JSON number


def with_number(route: Route, number: str) -> bytes:
    text = raw(put(route.body(), route.field, MARK)).decode()
    return text.replace(json.dumps(MARK), number).encode()


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[Route], bytes | None]  # None: the route has no such field
    status: int
    path: Callable[[Route], str] | None = None  # the path the 422 must name
    headers: dict[str, str] | None = None
    code: str = "invalid_request"


def _duplicate_first_key(route: Route) -> bytes:
    body = route.body()
    key = next(iter(body))
    text = raw(body).decode()
    return ("{" + json.dumps(key) + ": " + json.dumps(body[key]) + ", " + text[1:]).encode()


def _text(value: str) -> Callable[[Route], bytes | None]:
    def make(route: Route) -> bytes | None:
        return None if route.text is None else raw(put(route.body(), route.text, value))

    return make


def _timestamp(value: str) -> Callable[[Route], bytes | None]:
    def make(route: Route) -> bytes | None:
        return None if route.timestamp is None else raw(put(route.body(), route.timestamp, value))

    return make


HOSTILE = [
    Hostile("array 1,000 deep", lambda r: b"[" * 1000 + b"]" * 1000, 422, lambda r: ""),
    Hostile(
        "object 1,000 deep", lambda r: b'{"a": ' * 1000 + b"1" + b"}" * 1000, 422, lambda r: ""
    ),
    Hostile(
        "a field 40 levels deep",
        lambda r: raw(put(r.body(), r.field, json.loads("[" * 40 + "]" * 40))),
        422,
        lambda r: path_of((*r.field, *[0] * (32 - len(r.field)))),
    ),
    Hostile(
        "a 4,301-digit integer", lambda r: with_number(r, DIGITS), 422, lambda r: path_of(r.field)
    ),
    Hostile(
        "a 4,301-digit decimal",
        lambda r: with_number(r, "0." + DIGITS),
        422,
        lambda r: path_of(r.field),
    ),
    Hostile(
        "a 4,301-digit exponent",
        lambda r: with_number(r, "1e" + DIGITS),
        422,
        lambda r: path_of(r.field),
    ),
    Hostile(
        "year 9999 at -12:00",
        _timestamp("9999-12-31T23:59:59-12:00"),
        422,
        lambda r: path_of(r.timestamp or ()),
    ),
    Hostile(
        "year 1 at +14:00",
        _timestamp("0001-01-01T00:00:00+14:00"),
        422,
        lambda r: path_of(r.timestamp or ()),
    ),
    Hostile(
        "year 9999 in UTC, past 9999 in Shanghai",
        _timestamp("9999-12-31T20:00:00+00:00"),
        422,
        lambda r: path_of(r.timestamp or ()),
    ),
    Hostile("null", lambda r: b"null", 422),
    Hostile("a bare number", lambda r: b"1", 422),
    Hostile("an array", lambda r: b"[]", 422),
    Hostile("invalid UTF-8", lambda r: raw(r.body()).replace(b"{", b'{"\xff\xfe": 1, ', 1), 422),
    Hostile("UTF-16", lambda r: json.dumps(r.body()).encode("utf-16"), 422),
    Hostile(
        "a lone surrogate",
        lambda r: raw(r.body()).replace(b"{", b'{"x": "\\ud800", ', 1),
        422,
        lambda r: "x",
    ),
    Hostile("a key twice", _duplicate_first_key, 422, lambda r: next(iter(r.body()))),
    Hostile("a NUL in a name", _text("上海\u0000大学"), 422, lambda r: path_of(r.text or ())),
    Hostile("a newline in a name", _text("上海\n大学"), 422, lambda r: path_of(r.text or ())),
    Hostile(
        "a C1 control in a name", _text("上海\u0085大学"), 422, lambda r: path_of(r.text or ())
    ),
    Hostile(
        "a right-to-left override in a name",
        _text("上海\u202e学大"),
        422,
        lambda r: path_of(r.text or ()),
    ),
    Hostile(
        "a bidi isolate in a name",
        _text("\u2067上海大学\u2069"),
        422,
        lambda r: path_of(r.text or ()),
    ),
    Hostile(
        "text/plain",
        lambda r: raw(r.body()),
        415,
        headers={"content-type": "text/plain"},
        code="unsupported_media_type",
    ),
    Hostile(
        "no content type",
        lambda r: raw(r.body()),
        415,
        headers={},
        code="unsupported_media_type",
    ),
    Hostile(
        "a form",
        lambda r: b"name=x",
        415,
        headers={"content-type": "application/x-www-form-urlencoded"},
        code="unsupported_media_type",
    ),
    Hostile(
        "JSON in UTF-16 by its charset",
        lambda r: raw(r.body()),
        415,
        headers={"content-type": "application/json; charset=utf-16"},
        code="unsupported_media_type",
    ),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(settings_for(sqlite_url(tmp_path_factory.mktemp("hostile"))))
    with TestClient(app, raise_server_exceptions=False) as c:
        authorise(c, app)
        yield c


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_each_valid_body_passes_validation(client: TestClient, route: Route) -> None:
    """The bodies the table spoils are themselves valid (else the table proves nothing)."""
    response = client.post(route.path, content=raw(route.body()), headers=JSON)
    assert response.status_code not in (415, 422), response.text


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.name)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_hostile_input_is_a_4xx_naming_the_field(
    client: TestClient, route: Route, hostile: Hostile
) -> None:
    body = hostile.make(route)
    if body is None:
        pytest.skip(f"{route.name} has no such field")
    headers = JSON if hostile.headers is None else hostile.headers
    response = client.post(route.path, content=body, headers=headers)
    found = problem(response, hostile.status, hostile.code)
    if hostile.path is not None:
        paths = [d["path"] for d in found["detail"]]
        assert hostile.path(route) in paths, paths


def test_exact_decimals_and_long_but_sane_numbers_still_pass(client: TestClient) -> None:
    body = example("ipa2022-art20")
    text = raw(body).decode()
    amount = body["loans"][0]["disbursed_amount"]
    as_number = text.replace(json.dumps(amount), amount)  # a JSON number, not a string
    response = client.post(
        "/v1/programs/ipa2022-art20/calculate", content=as_number.encode(), headers=JSON
    )
    assert response.status_code == 200, response.text
    again = client.post("/v1/programs/ipa2022-art20/calculate", json=body)
    assert response.json()["award"] == again.json()["award"]


def test_json_with_a_byte_order_mark_and_a_json_suffix_type_is_read(client: TestClient) -> None:
    body = b"\xef\xbb\xbf" + raw(_art19())
    headers = {"content-type": "application/vnd.api+json; charset=UTF-8"}
    response = client.post("/v1/programs/ipa2022-art19/check", content=body, headers=headers)
    assert response.status_code == 200, response.text


def test_the_audit_still_takes_json_lines(tmp_path: Path, client: TestClient) -> None:
    line = (
        '{"award_id": "A1", "program_id": "ipa2022-art10-1", "applicant_uscc": '
        '"123100004250061179", "awarded_amount": "350000.00", "awarded_on": "2023-03-20", '
        '"recognised_on": "2023-03-01"}\n'
    )
    response = client.post(
        "/v1/audit", content=line.encode(), headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "line",
    [b"[" * 1000 + b"]" * 1000, b'{"award_id": "A1", "awarded_amount": ' + DIGITS.encode() + b"}"],
    ids=["1,000 deep", "4,301 digits"],
)
def test_hostile_json_lines_are_unreadable_not_a_server_error(
    client: TestClient, line: bytes
) -> None:
    response = client.post(
        "/v1/audit", content=line + b"\n", headers={"content-type": "application/x-ndjson"}
    )
    problem(response, 422, "unreadable_audit_input")


def test_a_client_hanging_up_mid_body_is_no_server_error(tmp_path: Path) -> None:
    """The real server (uvicorn): headers and half a body, then the socket closes. The request
    is logged at INFO as a 499, counted as a 499, and nothing is logged as an error."""
    from tests.test_operations import running_service, samples

    body = raw(_art19())
    head = (
        "POST /v1/programs/ipa2022-art19/calculate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "X-Request-ID: hung-up\r\n\r\n"
    ).encode()
    with running_service(tmp_path) as service:
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
            sock.sendall(head + body[: len(body) // 2])
            time.sleep(0.3)  # the server is reading the body
        deadline = time.monotonic() + 10
        while not (lines := [e for e in service.log_lines() if e.get("request_id") == "hung-up"]):
            assert time.monotonic() < deadline, "no log line for the request"
            time.sleep(0.05)
        time.sleep(0.2)
        lines = [e for e in service.log_lines() if e.get("request_id") == "hung-up"]
        with httpx.Client(base_url=service.url) as http:
            counted = samples(http, "http_requests_total")  # type: ignore[arg-type]
    access = [e for e in lines if e["logger"] == "service.access"]
    assert [(e["status"], e["level"]) for e in access] == [(499, "info")]
    assert all(e["level"] in ("debug", "info") for e in lines), lines
    route = "/v1/programs/{program_id}/calculate"
    statuses = {dict(labels)["status"] for labels in counted if dict(labels)["route"] == route}
    assert statuses == {"499"}


def test_the_image_command_ignores_x_forwarded_for_from_local_clients(tmp_path: Path) -> None:
    """uvicorn as the Dockerfile runs it (--no-proxy-headers; TRUSTED_PROXIES unset): a local
    client that invents X-Forwarded-For addresses is still one anonymous caller."""
    from tests.test_operations import running_service

    limited = {"ANONYMOUS_REQUESTS_PER_MINUTE": "3"}
    with running_service(tmp_path, "--no-proxy-headers", env_extra=limited) as service:
        statuses = [
            httpx.get(
                f"{service.url}/v1/programs", headers={"X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code
            for n in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


def test_every_json_route_documents_its_415(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    templates = {
        "/v1/programs/ipa2022-art19/check": "/v1/programs/{program_id}/check",
        "/v1/programs/ipa2022-art19/calculate": "/v1/programs/{program_id}/calculate",
        "/v1/programs/stcsm2022-concept-verification/requirements": (
            "/v1/programs/{program_id}/requirements"
        ),
        "/v1/programs/stcsm2023-concept-verification/acceptance": (
            "/v1/programs/{program_id}/acceptance"
        ),
        "/v1/applications/1/approval": "/v1/applications/{application_id}/approval",
        "/v1/admin/disqualifications/1/removal": "/v1/admin/disqualifications/{entry_id}/removal",
    }
    for route in ROUTES:
        responses = paths[templates.get(route.path, route.path)]["post"]["responses"]
        assert "415" in responses, route.name

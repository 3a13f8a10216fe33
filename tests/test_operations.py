"""Operations: JSON logs with a request id, X-Request-ID, /readyz, /metrics, graceful shutdown.

The in-process tests use TestClient; the shutdown test runs the real service (uvicorn in a
subprocess), as the Swagger UI browser test does (``running_service``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.auth.roles import Role
from service.config import Settings
from service.db import migrate
from service.engine.base import EngineError
from service.engine.python_eval import PythonEvaluator
from service.main import create_app
from tests.authsupport import make_key
from tests.examples import examples

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
CALCULATE = "/v1/programs/ipa2022-art19/calculate"
CALCULATE_ROUTE = "/v1/programs/{program_id}/calculate"


def art19() -> dict[str, Any]:
    return json.loads(json.dumps(examples()["ipa2022-art19"]["value"]))


def _app(database_url: str) -> FastAPI:
    return create_app(Settings(rules_dir=RULES, database_url=database_url, auto_migrate=True))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return _app(f"sqlite:///{tmp_path_factory.mktemp('ops') / 'subsidy.db'}")


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def samples(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric family, keyed by their sorted labels."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    family = next(f for f in families if f.name == name.removesuffix("_total"))
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == name}


# --- request ids and logs -------------------------------------------------------------------


def test_request_id_is_echoed_and_in_every_log_line_of_the_request(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = client.post(CALCULATE, json=art19(), headers={"X-Request-ID": "review-2023.07:42"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "review-2023.07:42"
    lines = json_lines(capsys.readouterr().err)
    access = [e for e in lines if e["logger"] == "service.access"]
    assert access == [
        {
            "time": access[0]["time"],
            "level": "info",
            "logger": "service.access",
            "message": f"POST {CALCULATE} 200",
            "request_id": "review-2023.07:42",
            "method": "POST",
            "path": CALCULATE,
            "route": CALCULATE_ROUTE,
            "status": 200,
            "duration_ms": access[0]["duration_ms"],
        }
    ]
    assert isinstance(access[0]["duration_ms"], float) and access[0]["duration_ms"] > 0
    assert access[0]["time"].startswith("20") and access[0]["time"].endswith("+00:00")


def test_a_request_id_is_generated_when_none_is_sent(client: TestClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first != second and len(first) == 32 and first.isalnum()


@pytest.mark.parametrize(
    "unsafe",
    [
        "x" * 65,  # too long to repeat in every log line
        "id with spaces",
        'id"quoted',
        "-starts-with-a-dash",
        "semi;colon",
        "中文",
    ],
)
def test_an_unsafe_request_id_is_replaced(client: TestClient, unsafe: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": unsafe.encode()})
    echoed = response.headers["X-Request-ID"]
    assert echoed != unsafe and len(echoed) == 32 and echoed.isalnum()


def test_an_unhandled_error_is_logged_and_answered_with_the_request_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app(f"sqlite:///{tmp_path / 'subsidy.db'}")

    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        capsys.readouterr()
        response = c.get("/broken", headers={"X-Request-ID": "trace-500"})
        assert response.status_code == 500
        assert response.headers["X-Request-ID"] == "trace-500"
        lines = json_lines(capsys.readouterr().err)
        error = next(e for e in lines if e["message"] == "unhandled error")
        assert error["request_id"] == "trace-500" and "RuntimeError: boom" in error["exception"]
        access = next(e for e in lines if e["logger"] == "service.access")
        assert (access["status"], access["level"], access["request_id"]) == (
            500,
            "error",
            "trace-500",
        )
        labels = (("method", "GET"), ("route", "/broken"), ("status", "500"))
        assert samples(c, "http_requests_total")[labels] == 1


def test_log_lines_outside_requests_have_no_request_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    _app(f"sqlite:///{tmp_path / 'subsidy.db'}")
    loaded = next(e for e in json_lines(capsys.readouterr().err) if "loaded" in e["message"])
    assert loaded["logger"] == "service" and "request_id" not in loaded


# --- readiness --------------------------------------------------------------------------------


def test_readyz_is_200_when_the_database_answers(client: TestClient, app: FastAPI) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "rules_version": app.state.runtime.book.version,
        "database": "ok",
        "schema_revision": migrate.head(),
        "engine": "ok",
    }


def test_the_service_refuses_to_start_on_a_database_never_migrated(tmp_path: Path) -> None:
    app = create_app(Settings(rules_dir=RULES, database_url=f"sqlite:///{tmp_path / 'new.db'}"))
    with pytest.raises(migrate.SchemaNotCurrent) as refused, TestClient(app):
        pass  # pragma: no cover - start-up fails
    assert "was never migrated" in str(refused.value)
    assert "alembic -c migrations/alembic.ini upgrade head" in str(refused.value)
    assert "AUTO_MIGRATE=true" in str(refused.value)


def test_the_service_refuses_to_start_on_a_database_behind_the_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    old = create_app(Settings(rules_dir=RULES, database_url=url))
    with pytest.raises(migrate.SchemaNotCurrent, match="is at revision 0001"), TestClient(old):
        pass  # pragma: no cover - start-up fails
    migrate.upgrade(url)
    with TestClient(create_app(Settings(rules_dir=RULES, database_url=url))) as c:
        assert c.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_schema_falls_behind_after_start_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    with TestClient(_app(url)) as c:
        assert c.get("/readyz").status_code == 200
        migrate.downgrade(url, "0001")
        response = c.get("/readyz")
        migrate.upgrade(url)
        assert c.get("/readyz").status_code == 200
    body = response.json()
    assert (response.status_code, body["code"], body["check"]) == (503, "not_ready", "schema")
    assert body["revision"] == "0001"
    assert "upgrade head" in body["message_en"] and "upgrade head" in body["message_zh"]


class _BrokenEngine:
    name = "broken"

    def evaluate(self, program: object, facts: object) -> object:
        raise EngineError("the engine lost its state")


class _WrongEngine(PythonEvaluator):
    """Answers, but wrongly: the applicant is never registered in Shanghai (第二条)."""

    def evaluate(self, program: Any, facts: Any) -> Any:
        found = super().evaluate(program, facts)
        return dataclasses.replace(found, app=found.app | {"registered-in-shanghai"})


@pytest.mark.parametrize("engine", [_BrokenEngine(), _WrongEngine()], ids=["fails", "wrong"])
def test_readyz_is_503_when_the_engine_fails_the_canary(tmp_path: Path, engine: object) -> None:
    app = _app(f"sqlite:///{tmp_path / 'subsidy.db'}")
    with TestClient(app) as c:
        assert c.get("/readyz").json()["engine"] == "ok"
        app.state.runtime = dataclasses.replace(app.state.runtime, evaluator=engine)
        response = c.get("/readyz")
        assert c.get("/healthz").status_code == 200  # alive, but not ready
    body = response.json()
    assert (response.status_code, body["check"]) == (503, "engine")
    assert body["program_id"] == app.state.canary.program.id
    assert body["message_zh"] and body["message_en"]


@pytest.mark.parametrize(
    "database_url",
    [
        "sqlite:////nonexistent-directory/subsidy.db",  # a path SQLite cannot open
        "postgresql+psycopg://subsidy@127.0.0.1:1/subsidy",  # nothing listens on port 1
    ],
)
def test_readyz_is_503_in_both_languages_when_the_database_is_unreachable(
    database_url: str,
) -> None:
    app = create_app(Settings(rules_dir=RULES, database_url=database_url))
    with TestClient(app) as c:  # no AUTO_MIGRATE: start-up itself needs no database
        assert c.get("/healthz").status_code == 200  # alive, but not ready
        response = c.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["code"], body["check"]) == (503, "not_ready", "database")
    assert body["message_zh"] == "数据库无法连接"
    assert body["message_en"] == "The database is unreachable"


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_evaluations_by_outcome(
    client: TestClient,
) -> None:
    requests_before = samples(client, "http_requests_total")
    evaluations_before = samples(client, "subsidy_evaluations_total")
    ineligible = art19()
    ineligible["applicant"]["registered_in_shanghai"] = False
    assert client.post(CALCULATE, json=art19()).json()["eligible"] is True
    assert client.post(CALCULATE, json=ineligible).json()["eligible"] is False
    assert client.post("/v1/programs/ipa2022-art19/check", json=art19()).status_code == 200

    requests = samples(client, "http_requests_total")
    calculate = (("method", "POST"), ("route", CALCULATE_ROUTE), ("status", "200"))
    assert requests[calculate] - requests_before.get(calculate, 0) == 2
    assert not any("ipa2022-art19" in dict(labels)["route"] for labels in requests)
    evaluations = samples(client, "subsidy_evaluations_total")
    eligible = (("outcome", "eligible"), ("program_id", "ipa2022-art19"))
    not_eligible = (("outcome", "ineligible"), ("program_id", "ipa2022-art19"))
    assert evaluations[eligible] - evaluations_before.get(eligible, 0) == 2  # calculate, check
    assert evaluations[not_eligible] - evaluations_before.get(not_eligible, 0) == 1

    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    latency = families["http_request_duration_seconds"]
    assert latency.type == "histogram"
    count = next(
        s.value
        for s in latency.samples
        if s.name == "http_request_duration_seconds_count"
        and tuple(sorted(s.labels.items())) == calculate
    )
    assert count == requests[calculate]


def test_unrouted_paths_share_one_label(client: TestClient) -> None:
    for n in range(3):
        assert client.get(f"/no/such/path/{n}").status_code == 404
    routes = {dict(labels)["route"] for labels in samples(client, "http_requests_total")}
    assert "unmatched" in routes and not any(r.startswith("/no/such") for r in routes)


def test_each_app_has_its_own_registry(client: TestClient, tmp_path: Path) -> None:
    client.get("/healthz")
    other = _app(f"sqlite:///{tmp_path / 'subsidy.db'}")
    with TestClient(other) as c:
        healthz = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
        assert samples(c, "http_requests_total").get(healthz) is None
        c.get("/healthz")
        assert samples(c, "http_requests_total")[healthz] == 1


# --- the real service: graceful shutdown -----------------------------------------------------


@dataclass
class Service:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_lines(self) -> list[dict[str, Any]]:
        return json_lines(self.log.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_service(
    folder: Path, *uvicorn_args: str, env_extra: dict[str, str] | None = None
) -> Iterator[Service]:
    """``uvicorn service.main:app`` on a free port, on a fresh SQLite file (AUTO_MIGRATE), its
    log lines in ``folder/service.log``; stopped (and waited for) on exit."""
    port = free_port()
    env = {
        **os.environ,
        "RULES_DIR": str(RULES),
        "DATABASE_URL": f"sqlite:///{folder / 'subsidy.db'}",
        "AUTO_MIGRATE": "true",
        "LOG_FORMAT": "json",
        **(env_extra or {}),
    }
    log = folder / "service.log"
    command = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port), *uvicorn_args],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the service exited at start-up:\n{log.read_text()}")
            try:
                if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the service did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield service
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    """SIGTERM while a calculate request is half-sent: uvicorn stops accepting connections,
    waits for the request, answers it in full, then shuts the app down in order."""
    body = json.dumps(art19(), ensure_ascii=False).encode()
    head = (
        f"POST {CALCULATE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: in-flight\r\n\r\n"
    ).encode()
    with running_service(tmp_path, "--timeout-graceful-shutdown", "20") as service:
        expected = httpx.post(service.url + CALCULATE, json=art19()).json()
        with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
            sock.sendall(head + body[: len(body) // 2])
            time.sleep(0.5)  # the server has parsed the headers: the request is in flight
            service.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while True:  # shutdown has begun once new connections are refused
                try:
                    socket.create_connection(("127.0.0.1", service.port), timeout=1).close()
                except OSError:
                    break
                assert time.monotonic() < deadline, "the service still accepts connections"
                time.sleep(0.05)
            time.sleep(0.5)  # past uvicorn's first 0.1 s: it is waiting for connections now
            assert service.process.poll() is None  # ...for ours
            sock.sendall(body[len(body) // 2 :])
            status, headers, payload = _read_response(sock)
        assert status == 200
        assert headers["x-request-id"] == "in-flight"
        assert headers["connection"] == "close"
        assert int(headers["content-length"]) == len(payload)
        assert json.loads(payload) == expected  # complete: the same answer as before SIGTERM
        returncode = service.process.wait(timeout=20)
        # uvicorn re-raises the SIGTERM it handled once it has shut down, so a supervisor sees
        # why it stopped (-15 here; 0 in the container, where uvicorn is PID 1 and the kernel
        # ignores a signal PID 1 has no handler for).
        assert returncode in (0, -signal.SIGTERM)
        messages = [e["message"] for e in service.log_lines()]
        assert "Waiting for connections to close. (CTRL+C to force quit)" in messages
        assert "Application shutdown complete." in messages
        assert messages[-1].startswith("Finished server process")
        assert not any("timeout graceful shutdown exceeded" in m for m in messages)


# --- the image --------------------------------------------------------------------------------


def test_the_image_keeps_its_database_on_a_volume_and_trusts_no_proxy_by_default() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'VOLUME ["/app/data"]' in dockerfile
    assert "DATABASE_URL=sqlite:////app/data/subsidy.db" in dockerfile
    assert dockerfile.index("chown subsidy /app/data") < dockerfile.index("VOLUME")
    assert "--no-proxy-headers" in dockerfile and "TRUSTED_PROXIES=" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "**/__pycache__", "*.db", "tests", "bench"} <= set(ignored)


def test_a_database_gone_after_start_up_is_a_503_problem_not_a_500(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    app = _app(f"sqlite:///{folder / 'subsidy.db'}")
    with TestClient(app, raise_server_exceptions=False) as c:
        key = make_key(app, Role.reviewer)
        assert c.get("/v1/rounds/1", headers={"X-API-Key": key}).status_code == 404
        app.state.runtime.db.dispose()
        folder.rename(tmp_path / "moved")  # SQLite can no longer open the file
        response = c.get("/v1/rounds/1", headers={"X-API-Key": key})
        ready = c.get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["code"], body["status"]) == ("database_unavailable", 503)
    assert body["message_zh"] and body["message_en"] and "Traceback" not in response.text
    assert response.headers["retry-after"] == "5"
    assert ready.status_code == 503 and ready.json()["check"] == "database"

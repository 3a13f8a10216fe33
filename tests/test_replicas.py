"""Four service processes on one PostgreSQL schema and one Redis behave as one: an idempotent
submission sent to all of them is stored once, concurrent allocations on all of them never
exceed the pool, the anonymous and per-key rate limits are shared (Redis), and a key revoked
through one is refused by all within a second. Plus the Redis-backed limit in-process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from service.auth import keys
from service.auth.roles import ALL_APPLICANTS, Role
from service.db import Database, migrate
from service.db.models import Allocation, Application
from service.main import create_app
from tests.dbsupport import (
    RULES,
    bank,
    postgres_schema,
    redis_prefix,
    redis_url,
    settings_for,
    sqlite_url,
)

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 4
ANONYMOUS_LIMIT = 20
AUDITOR_LIMIT = 12
POOL = Decimal("5000000.00")  # 第二十条
T = TypeVar("T")
UVICORN = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1"]
UVICORN += ["--no-proxy-headers"]


def test_two_apps_on_one_redis_share_the_anonymous_limit(tmp_path: Path) -> None:
    shared = {"redis_url": redis_url(), "redis_key_prefix": redis_prefix()}
    url = sqlite_url(tmp_path)
    first = create_app(settings_for(url, anonymous_requests_per_minute=3, **shared))
    second = create_app(settings_for(url, anonymous_requests_per_minute=3, **shared))
    with TestClient(first) as a, TestClient(second) as b:
        statuses = [c.get("/v1/programs").status_code for c in (a, b, a, b)]
        assert statuses == [200, 200, 200, 429]
        limited = b.get("/v1/programs")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], str, dict]]:
    """Four uvicorn processes on one migrated schema and one Redis prefix; the role keys."""
    folder = tmp_path_factory.mktemp("replicas")
    redis = redis_url()
    with postgres_schema("replicas") as url:
        migrate.upgrade(url)  # once, before the four start (they do not migrate)
        db = Database(url)
        made: dict[str, str] = {}
        with db.transaction() as session:
            for role in Role:
                applicants = (ALL_APPLICANTS,) if role is Role.portal else ()
                req = keys.KeyRequest(f"replica {role}", role, applicants, "tests")
                made[role.value] = keys.create(session, req)[1]
            req = keys.KeyRequest("to revoke", Role.reviewer, (), "tests")
            made["doomed"] = keys.create(session, req)[1]
        env = {
            **os.environ,
            "RULES_DIR": str(RULES),
            "DATABASE_URL": url,
            "REDIS_URL": redis,
            "REDIS_KEY_PREFIX": redis_prefix(),
            "ANONYMOUS_REQUESTS_PER_MINUTE": str(ANONYMOUS_LIMIT),
            "AUDITOR_REQUESTS_PER_MINUTE": str(AUDITOR_LIMIT),
            "PORTAL_REQUESTS_PER_MINUTE": "0",
            "REVIEWER_REQUESTS_PER_MINUTE": "0",
            "ADMIN_REQUESTS_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
        }
        started: list[Replica] = []
        try:
            for n in range(PROCESSES):
                port = _free_port()
                log = folder / f"replica-{n}.log"
                with log.open("wb") as sink:
                    process = subprocess.Popen(
                        [*UVICORN, "--port", str(port)],
                        cwd=ROOT,
                        env=env,
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                    )
                started.append(Replica(f"http://127.0.0.1:{port}", process, log))
            deadline = time.monotonic() + 90
            for replica in started:
                while True:
                    if replica.process.poll() is not None:
                        pytest.fail(f"a replica exited:\n{replica.log.read_text()}")
                    try:
                        if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        pytest.fail(f"a replica did not become ready:\n{replica.log.read_text()}")
                    time.sleep(0.1)
            yield [r.url for r in started], url, made
        finally:
            for replica in started:
                replica.process.terminate()
            for replica in started:
                try:
                    replica.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    replica.process.kill()
                    replica.process.wait()
            db.dispose()


def _at_once(count: int, work: Callable[[int], T]) -> list[T]:
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _post(base: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{base}{path}",
        headers={"X-API-Key": key, **kwargs.pop("headers", {})},
        timeout=60,
        **kwargs,
    )


# The processes keep the system clock, and the applications are dated inside 第二十七条's
# window: a reviewer enters them as paper applications received then (代录).
PAPER = "/v1/applications/paper"


@pytest.mark.postgres
@pytest.mark.slow
def test_an_idempotent_submission_sent_to_every_process_is_stored_once(
    replicas: tuple[list[str], str, dict[str, str]],
) -> None:
    urls, database_url, made = replicas
    applications = {f"replica-key-{n}": bank(7000 + n, "1000.00") for n in range(6)}

    def work(index: int) -> list[tuple[str, int, int]]:
        base = urls[index % PROCESSES]
        seen = []
        for key, application in applications.items():
            r = _post(
                base,
                PAPER,
                made["reviewer"],
                json={
                    "program_id": "ipa2022-art20",
                    "application": application,
                    "received_at": application["submitted_at"],
                },
                headers={"Idempotency-Key": key},
            )
            seen.append((key, r.status_code, r.json().get("id", -1)))
        return seen

    results = [row for rows in _at_once(PROCESSES * 2, work) for row in rows]
    assert {status for _, status, _ in results} == {201}
    ids: dict[str, set[int]] = defaultdict(set)
    for key, _, app_id in results:
        ids[key].add(app_id)
    assert all(len(found) == 1 for found in ids.values()), ids
    db = Database(database_url)
    try:
        with db.transaction(write=False) as session:
            stored = session.exec(
                select(Application.idempotency_key).where(
                    col(Application.idempotency_key).like("replica-key-%")
                )
            ).all()
    finally:
        db.dispose()
    assert sorted(stored) == sorted(applications)


@pytest.mark.postgres
@pytest.mark.slow
def test_allocations_on_every_process_never_exceed_the_pool(
    replicas: tuple[list[str], str, dict[str, str]],
) -> None:
    urls, database_url, made = replicas
    reviewer = made["reviewer"]
    rounds = [
        _post(
            urls[i], "/v1/rounds", reviewer, json={"program_id": "ipa2022-art20", "name": f"r{i}"}
        ).json()["id"]
        for i in range(2)
    ]

    def work(index: int) -> list[dict[str, Any]]:
        base = urls[index % PROCESSES]
        outcomes = []
        for step in range(3):
            round_id = rounds[(index + step) % 2]
            application = bank(8000 + index * 10 + step, "1500000.00")
            r = _post(
                base,
                PAPER,
                reviewer,
                json={
                    "program_id": "ipa2022-art20",
                    "application": application,
                    "round_id": round_id,
                    "received_at": application["submitted_at"],
                },
            )
            assert r.status_code == 201, r.text
            approval = _post(
                base,
                f"/v1/applications/{r.json()['id']}/approval",
                reviewer,
                json={"approved": True},
            )
            assert approval.status_code == 200, approval.text
            allocation = _post(base, f"/v1/rounds/{round_id}/allocate", reviewer)
            assert allocation.status_code == 200, allocation.text
            outcomes.append(allocation.json())
        return outcomes

    outcomes = [o for rows in _at_once(PROCESSES * 2, work) for o in rows]
    for outcome in outcomes:
        assert Decimal(outcome["total"]) <= Decimal(outcome["available"]) <= POOL
    db = Database(database_url)
    try:
        with db.transaction(write=False) as session:
            runs = session.exec(
                select(Allocation)
                .where(col(Allocation.round_id).in_(rounds))
                .order_by(col(Allocation.id))
            ).all()
    finally:
        db.dispose()
    current: dict[int, int] = {}
    for run in runs:  # replayed in the order written: the rounds together within the pool
        current[run.round_id] = run.total_fen
        assert sum(current.values()) <= int(POOL * 100), "the pool was exceeded"
    assert sum(current.values()) == int(POOL * 100)  # 24 × 1.5M asked: the whole pool given


@pytest.mark.postgres
@pytest.mark.slow
def test_the_rate_limits_are_shared_by_every_process(
    replicas: tuple[list[str], str, dict[str, str]],
) -> None:
    urls, _, made = replicas

    def statuses(headers: dict[str, str], n: int) -> list[int]:
        return [
            httpx.get(f"{urls[i % PROCESSES]}/v1/programs", headers=headers, timeout=30).status_code
            for i in range(n)
        ]

    anonymous = statuses({}, ANONYMOUS_LIMIT + 8)  # spread over the four processes
    assert anonymous == [200] * ANONYMOUS_LIMIT + [429] * 8
    auditor = statuses({"X-API-Key": made["auditor"]}, AUDITOR_LIMIT + 4)
    assert auditor == [200] * AUDITOR_LIMIT + [429] * 4


@pytest.mark.postgres
@pytest.mark.slow
def test_a_key_revoked_through_one_process_is_refused_by_all_within_a_second(
    replicas: tuple[list[str], str, dict[str, str]],
) -> None:
    urls, _, made = replicas
    doomed = {"X-API-Key": made["doomed"]}
    assert all(httpx.get(f"{u}/v1/rounds/999999", headers=doomed).status_code == 404 for u in urls)
    listed = httpx.get(f"{urls[0]}/v1/admin/keys", headers={"X-API-Key": made["admin"]}).json()
    key_id = next(k["id"] for k in listed if k["name"] == "to revoke")
    revoked = _post(urls[0], f"/v1/admin/keys/{key_id}/revocation", made["admin"])
    assert revoked.status_code == 200, revoked.text
    start = time.monotonic()
    refused_after: dict[str, float] = {}
    while len(refused_after) < PROCESSES and time.monotonic() - start < 3:
        for u in urls:
            if u not in refused_after and (
                httpx.get(f"{u}/v1/rounds/999999", headers=doomed).status_code == 401
            ):
                refused_after[u] = time.monotonic() - start
        time.sleep(0.02)
    assert len(refused_after) == PROCESSES, refused_after
    assert max(refused_after.values()) < 1.0, refused_after

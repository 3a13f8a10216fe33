"""20 clients at once against a real PostgreSQL server, through a real HTTP server: the pool is
never exceeded, an idempotent submission is never stored twice, no application is lost, and
the database settles every race it is asked to (one application per guide year, one active
第二十六条 entry per organisation)."""

from __future__ import annotations

import copy
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlmodel import col, select

from service.db.models import Allocation, AllocationLine, Application, Evaluation
from service.main import create_app
from service.rules.model import Statement
from tests.authsupport import RoleAuth, role_keys
from tests.dbsupport import bank, example, postgres_schema, settings_for, uscc

pytestmark = pytest.mark.postgres

CLIENTS = 20
POOL = Decimal("5000000.00")  # 第二十条
T = TypeVar("T")
AUTH: dict[str, RoleAuth] = {}  # per server: each request with its role's key


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FastAPI]]:
    """The app on a fresh PostgreSQL schema, served by uvicorn on a free local port."""
    with postgres_schema("concurrency") as url:
        app = create_app(settings_for(url))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not uv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        AUTH[base] = RoleAuth(role_keys(app), app)
        try:
            yield base, app
        finally:
            uv.should_exit = True
            thread.join(timeout=30)


def at_once(base: str, work: Callable[[httpx.Client, int], T]) -> list[T]:
    """Run ``work`` in CLIENTS threads, each with its own HTTP client, released together."""
    barrier = threading.Barrier(CLIENTS)

    def run(index: int) -> T:
        with httpx.Client(base_url=base, timeout=120, auth=AUTH[base]) as client:
            barrier.wait()
            return work(client, index)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(run, range(CLIENTS)))


def _body(program_id: str, application: dict[str, Any], round_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"program_id": program_id, "application": application}
    if round_id is not None:
        body["round_id"] = round_id
    return body


def _session(app: FastAPI) -> Any:
    return app.state.runtime.db.transaction(write=False)


def test_concurrent_submissions_store_each_idempotent_application_once(
    server: tuple[str, FastAPI],
) -> None:
    base, app = server
    keyed = {f"pg-key-{n}": bank(1000 + n, "1000.00") for n in range(30)}

    def work(client: httpx.Client, index: int) -> list[tuple[str | None, int, int]]:
        rng = random.Random(index)
        order = list(keyed.items())
        rng.shuffle(order)
        seen: list[tuple[str | None, int, int]] = []
        for key, application in order:  # every client sends every keyed application
            r = client.post(
                "/v1/applications",
                json=_body("ipa2022-art20", application, None),
                headers={"Idempotency-Key": key},
            )
            seen.append((key, r.status_code, r.json().get("id", -1)))
        for extra in range(2):  # and two of its own without a key
            application = bank(2000 + index * 10 + extra, "1000.00")
            r = client.post("/v1/applications", json=_body("ipa2022-art20", application, None))
            seen.append((None, r.status_code, r.json().get("id", -1)))
        return seen

    results = [row for rows in at_once(base, work) for row in rows]
    assert {status for _, status, _ in results} == {201}
    ids_by_key: dict[str | None, set[int]] = defaultdict(set)
    for key, _, app_id in results:
        ids_by_key[key].add(app_id)
    assert all(len(ids_by_key[key]) == 1 for key in keyed), "one application per key"
    keyless = ids_by_key[None]
    assert len(keyless) == CLIENTS * 2

    returned = {next(iter(ids_by_key[k])) for k in keyed} | keyless
    with _session(app) as session:
        stored = session.exec(
            select(Application.id, Application.idempotency_key).where(
                col(Application.id).in_(sorted(returned))
            )
        ).all()
        stored_keys = Counter(
            session.exec(
                select(Application.idempotency_key).where(
                    col(Application.idempotency_key).like("pg-key-%")
                )
            ).all()
        )
        evaluations = Counter(
            session.exec(
                select(Evaluation.application_id).where(
                    col(Evaluation.application_id).in_(sorted(returned))
                )
            ).all()
        )
    assert {row[0] for row in stored} == returned, "no application is lost"
    assert stored_keys == Counter(dict.fromkeys(keyed, 1)), "no key is stored twice"
    assert evaluations == Counter(dict.fromkeys(returned, 1)), "each stored with its evaluation"


def test_the_same_key_with_different_bodies_stores_exactly_one(
    server: tuple[str, FastAPI],
) -> None:
    base, app = server

    def work(client: httpx.Client, index: int) -> int:
        application = bank(3000, f"{100 + index}.00")  # a different body from every client
        r = client.post(
            "/v1/applications",
            json=_body("ipa2022-art20", application, None),
            headers={"Idempotency-Key": "pg-contested"},
        )
        return r.status_code

    statuses = Counter(at_once(base, work))
    assert statuses == Counter({201: 1, 409: CLIENTS - 1})
    with _session(app) as session:
        stored = session.exec(
            select(Application.id).where(Application.idempotency_key == "pg-contested")
        ).all()
    assert len(stored) == 1


def test_concurrent_allocations_never_exceed_the_pool(server: tuple[str, FastAPI]) -> None:
    """Three rounds of 第二十条, each asking for more than the whole 5,000,000 pool, while
    clients keep submitting, approving and allocating all three at once."""
    base, app = server
    with httpx.Client(base_url=base, timeout=60, auth=AUTH[base]) as setup:
        rounds = [
            setup.post("/v1/rounds", json={"program_id": "ipa2022-art20", "name": f"r{i}"}).json()[
                "id"
            ]
            for i in range(3)
        ]

    def work(client: httpx.Client, index: int) -> list[dict[str, Any]]:
        rng = random.Random(7 + index)
        outcomes: list[dict[str, Any]] = []
        mine: list[int] = []
        for step in range(6):
            round_id = rounds[(index + step) % 3]
            entitlement = f"{rng.randint(300_000, 2_000_000)}.{rng.randint(0, 99):02d}"
            application = bank(5000 + index * 100 + step, entitlement)
            r = client.post(
                "/v1/applications",
                json=_body("ipa2022-art20", application, round_id),
                headers={"Idempotency-Key": f"pg-alloc-{index}-{step}"},
            )
            assert r.status_code == 201, r.text
            mine.append(r.json()["id"])
            approval = client.post(
                f"/v1/applications/{rng.choice(mine)}/approval", json={"approved": True}
            )
            assert approval.status_code == 200, approval.text
            allocation = client.post(f"/v1/rounds/{rng.choice(rounds)}/allocate")
            assert allocation.status_code == 200, allocation.text
            outcomes.append(allocation.json())
        return outcomes

    outcomes = [o for rows in at_once(base, work) for o in rows]

    for outcome in outcomes:  # every answer a client saw
        assert Decimal(outcome["total"]) <= Decimal(outcome["available"]) <= POOL
        assert Decimal(outcome["total"]) == min(
            Decimal(outcome["available"]), Decimal(outcome["total_entitlement"])
        )
        for line in outcome["allocations"]:
            assert Decimal(line["amount"]) <= Decimal(line["entitlement"])

    with _session(app) as session:
        runs = session.exec(
            select(Allocation)
            .where(col(Allocation.round_id).in_(rounds))
            .order_by(col(Allocation.id))
        ).all()
        sums: dict[int, int] = defaultdict(int)
        for allocation_id, amount in session.exec(
            select(AllocationLine.allocation_id, AllocationLine.amount_fen).where(
                col(AllocationLine.allocation_id).in_([r.id for r in runs])
            )
        ).all():
            sums[allocation_id] += amount
    # Replay the recorded runs in the order they were written (under the program's lock):
    # after every one, the rounds' current runs together stay within the pool.
    current: dict[int, int] = {}
    competing = False
    for run in runs:
        assert run.id is not None
        assert sums[run.id] == run.total_fen
        current[run.round_id] = run.total_fen
        assert sum(current.values()) <= int(POOL * 100), "the pool was exceeded"
        competing = competing or len(current) == 3
    assert competing, "the three rounds never competed for the pool"
    assert sum(current.values()) == int(POOL * 100)  # the demand exceeds the pool: all of it
    # No round recorded two runs with the same number (the unique constraint held).
    assert len({(r.round_id, r.run) for r in runs}) == len(runs)


ONCE = Statement(
    id="one-application-per-guide-year",
    article="四（一）注4",
    zh="每家企业/机构同一年度仅能申报一个项目",
    en="An organisation may submit only one application per guide year",
)


def test_one_first_application_per_guide_year_under_a_race(server: tuple[str, FastAPI]) -> None:
    base, app = server
    programs = app.state.runtime.book.programs
    originals = {pid: programs[pid] for pid in ("ipa2022-art13", "ipa2022-art14")}
    for pid, program in originals.items():
        declared = copy.copy(program)
        object.__setattr__(declared, "once_per_applicant", ONCE)
        object.__setattr__(declared, "guide_year", 2023)
        programs[pid] = declared
    try:

        def work(client: httpx.Client, index: int) -> bool:
            pid = ("ipa2022-art13", "ipa2022-art14")[index % 2]
            application = example(pid)
            application["applicant"]["uscc"] = uscc(9999)
            r = client.post("/v1/applications", json=_body(pid, application, None))
            assert r.status_code == 201, r.text
            return bool(r.json()["evaluation"]["eligible"])

        eligible = Counter(at_once(base, work))
    finally:
        programs.update(originals)
    assert eligible == Counter({True: 1, False: CLIENTS - 1})
    with _session(app) as session:
        holders = session.exec(
            select(Application.id).where(
                Application.applicant_uscc == uscc(9999), col(Application.once_key).is_not(None)
            )
        ).all()
    assert len(holders) == 1


def test_one_active_disqualification_per_organisation_under_a_race(
    server: tuple[str, FastAPI],
) -> None:
    base, _ = server

    def work(client: httpx.Client, index: int) -> int:
        r = client.post(
            "/v1/admin/disqualifications",
            json={
                "uscc": uscc(8888),
                "reason": f"虚假材料 {index}",
                "decided_on": "2023-06-01",
                "added_by": f"clerk-{index}",
            },
        )
        return r.status_code

    assert Counter(at_once(base, work)) == Counter({201: 1, 409: CLIENTS - 1})

"""The ledger and 第三条's fund under concurrency: two service processes (uvicorn, as deployed) on
one PostgreSQL schema. Many claims of one patent at once leave exactly one counted and one paid;
two programs allocated at once never together pass the fund.

The servers run on the system clock, so the applications are paper entries (代录) received in
2023, inside 第二十七条's window; the claims take the same path and the same locks either way.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.auth import keys
from service.auth.roles import Role
from service.db import migrate
from service.db.session import Database
from service.schemas.identifiers import patent_check_char
from tests.dbsupport import RULES, bank, example, postgres_schema, uscc

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
FUND = "5000.00"
CLAIMANTS = 12


@dataclass
class Cluster:
    bases: list[str]
    key: str  # a reviewer's key, valid on every process (one database)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    rules = tmp_path_factory.mktemp("fund") / "rules"
    shutil.copytree(RULES, rules)
    general = rules / "ipa2022" / "_general.yaml"
    text = general.read_text(encoding="utf-8")
    general.write_text(text.replace('value: "54472000.00"', f'value: "{FUND}"'), encoding="utf-8")
    with postgres_schema("ledgerpg") as url:
        migrate.upgrade(url)
        db = Database(url)
        with db.transaction() as session:
            _, key = keys.create(session, keys.KeyRequest("并发评审", Role.reviewer, (), "tests"))
        db.dispose()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "RULES_DIR": str(rules),
            "LOG_LEVEL": "WARNING",
            "ANONYMOUS_REQUESTS_PER_MINUTE": "0",
        }
        ports = [_port(), _port()]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "service.main:app", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            deadline = time.monotonic() + 60
            for base in bases:
                while True:
                    try:
                        if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, "a service process did not start"
                    time.sleep(0.2)
            yield Cluster(bases, key)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)


def _client(cluster: Cluster, index: int) -> httpx.Client:
    base = cluster.bases[index % len(cluster.bases)]
    return httpx.Client(base_url=base, timeout=120, headers={"X-API-Key": cluster.key})


def _paper(
    client: httpx.Client, program_id: str, body: dict[str, Any], round_id: int
) -> dict[str, Any]:
    response = client.post(
        "/v1/applications/paper",
        json={
            "program_id": program_id,
            "application": body,
            "round_id": round_id,
            "received_at": body["submitted_at"],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _round(client: httpx.Client, program_id: str) -> int:
    response = client.post("/v1/rounds", json={"program_id": program_id, "name": "并发"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _together(count: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_claims_of_one_patent_leave_exactly_one_paid(cluster: Cluster) -> None:
    with _client(cluster, 0) as client:
        round_id = _round(client, "ipa2022-art19")

    def claim(index: int) -> dict[str, Any]:
        body = example("ipa2022-art19")
        body["applicant"]["uscc"] = uscc(100 + index, prefix="12310000MA")
        body["transactions"] = body["transactions"][:1]  # everyone claims the same patent
        with _client(cluster, index) as client:
            return _paper(client, "ipa2022-art19", body, round_id)

    records = _together(CLAIMANTS, claim)
    counted = [r["id"] for r in records if r["evaluation"]["items"][0]["counted"]]
    assert len(counted) == 1, "exactly one claim counts the patent"
    with _client(cluster, 1) as client:
        for r in records:
            client.post(f"/v1/applications/{r['id']}/approval", json={"approved": True})
        result = client.post(f"/v1/rounds/{round_id}/allocate").json()
    assert {a["application_id"]: a["amount"] for a in result["allocations"]} == {
        counted[0]: "1500.00"
    }


def test_two_programs_allocated_at_once_stay_within_the_fund(cluster: Cluster) -> None:
    with _client(cluster, 0) as client:
        banks, unis = _round(client, "ipa2022-art20"), _round(client, "ipa2022-art19")
        b = _paper(
            client, "ipa2022-art20", bank(200, "4000.00", "2023-07-20T09:30:00+08:00"), banks
        )
        body = example("ipa2022-art19")
        body["applicant"]["uscc"] = uscc(201, prefix="12310000MA")
        for index, digits in enumerate(["202110000001", "202110000002", "202110000003"]):
            body["transactions"][index]["patent_number"] = digits + patent_check_char(digits)
        u = _paper(client, "ipa2022-art19", body, unis)
        for app_id in (b["id"], u["id"]):
            client.post(f"/v1/applications/{app_id}/approval", json={"approved": True})
    rounds = [banks, unis]

    def allocate(index: int) -> dict[str, Any]:
        with _client(cluster, index) as client:
            response = client.post(f"/v1/rounds/{rounds[index]}/allocate")
            assert response.status_code == 200, response.text
            return dict(response.json())

    results = _together(2, allocate)
    totals = [Decimal(r["total"]) for r in results]
    assert sum(totals) <= Decimal(FUND), totals  # 4,000 + 4,500 entitled; the fund is 5,000
    # The allocations took turns: the later one saw the earlier one's total, and the fund
    # (with what earlier tests of this module allocated) is spent exactly, never passed.
    later = max(results, key=lambda r: Decimal(r["fund"]["allocated_elsewhere"]))
    assert Decimal(later["fund"]["allocated_elsewhere"]) + Decimal(later["total"]) == Decimal(FUND)
    assert later["fund"]["left"] == "0.00"
    assert any(w["rule"] == "fund-exhausted" for w in later["warnings"])

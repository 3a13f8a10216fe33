"""The service over HTTP against a bare FastAPI endpoint, measured in one run, back to back.

The bare endpoint (``bare_app.py`` below: FastAPI and plain pydantic, no service code) validates
the same request shape as ipa2022-art19's form and answers ``{}``. Against it: the service's
``/check`` and ``/calculate`` for ipa2022-art19, anonymous and with an API key; requests/s at 10
connections and p50/p99 at one. Then ``/healthz`` latency while four clients post
5,000-transaction bodies to ``/calculate``. Prints figures and ratios; never fails on a target.

    python bench/bench_http.py [--workers N] [--requests 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import ROOT, art19_body

BARE_APP = r"""
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Uscc = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")]
Patent = Annotated[str, StringConstraints(pattern=r"^(ZL)?\d{12}\.[\dX]$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Applicant(Strict):
    name: Name
    uscc: Uscc
    entity_type: Literal["university", "research_institute", "hospital", "enterprise",
                         "commercial_bank", "insurer", "guarantor", "industry_association",
                         "service_agency", "other"]
    registered_in_shanghai: bool
    operating_status: Literal["normal", "abnormal", "revoked", "deregistered"]
    credit_status: Literal["good", "bad"]
    is_sme: bool = False


class Party(Strict):
    name: Name
    uscc: Uscc
    registered_in_shanghai: bool
    is_sme: bool


class Transaction(Strict):
    patent_number: Patent
    kind: Literal["license", "transfer"]
    counterparty: Party
    contract_date: date
    cnipa_recorded: bool


class TransactionsApplication(Strict):
    applicant: Applicant
    submitted_at: AwareDatetime
    transactions: list[Transaction] = Field(max_length=5000)


app = FastAPI()


@app.post("/v1/programs/{program_id}/{action}")
async def evaluate(program_id: str, action: str, body: TransactionsApplication) -> dict:
    return {}


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(cwd: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": f"{ROOT}:{cwd}",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RULES_DIR": str(ROOT / "rules"),
        "DATABASE_URL": f"sqlite:///{cwd / 'bench.db'}",
        "AUTO_MIGRATE": "true",
        "ANONYMOUS_REQUESTS_PER_MINUTE": "0",  # the load is one client address, one key
        "PORTAL_REQUESTS_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
    }


def serve(module: str, port: int, cwd: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log", "--no-proxy-headers"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = subprocess.Popen(argv, cwd=cwd, env=env_for(cwd))
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


def make_key(cwd: Path) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.auth",
            "create",
            "--role",
            "portal",
            "--name",
            "bench",
            "--all-applicants",
        ],
        cwd=cwd,
        env=env_for(cwd),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    key: str = json.loads(out)["key"]
    time.sleep(1.0)  # made by another process: the servers see it within their poll (0.5 s)
    return key


async def load(
    url: str, body: dict[str, Any], connections: int, requests: int, headers: dict[str, str]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    content = json.dumps(body).encode()
    headers = {**headers, "content-type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        per_worker = requests // connections

        async def worker() -> None:
            for _ in range(per_worker):
                t = time.perf_counter()
                r = await client.post(url, content=content, headers=headers)
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return per_worker * connections / elapsed, latencies


def measure(
    name: str, url: str, body: dict[str, Any], requests: int, headers: dict[str, str] | None = None
) -> dict[str, float]:
    headers = headers or {}
    asyncio.run(load(url, body, 1, 200, headers))  # warm up
    rps, _ = asyncio.run(load(url, body, 10, requests, headers))
    _, lat = asyncio.run(load(url, body, 1, max(500, requests // 3), headers))
    lat.sort()
    out = {
        "rps": rps,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(len(lat) * 0.99)] * 1000,
    }
    print(
        f"{name:34s} {out['rps']:8,.0f} req/s (10 conn)   "
        f"p50 {out['p50']:.2f} ms   p99 {out['p99']:.2f} ms (1 conn)",
        flush=True,
    )
    return out


def big_body(n: int = 5000) -> dict[str, Any]:
    body = art19_body()
    items = body["transactions"]
    body["transactions"] = [copy.deepcopy(items[i % len(items)]) for i in range(n)]
    return body


def _heavy_client(url: str, content: bytes, stop: Any, answered: Any) -> None:
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            r = client.post(url, content=content, headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text[:300]
            with answered.get_lock():
                answered.value += 1


async def _probe(base: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            r = await client.get(f"{base}/healthz")
            latencies.append(time.perf_counter() - t)
            assert r.status_code == 200
            await asyncio.sleep(0.01)
    return sorted(latencies)


def healthz_under_load(base: str, seconds: float, heavy_clients: int) -> dict[str, float]:
    """/healthz, one request every 10 ms for ``seconds``, while ``heavy_clients`` client
    processes (not this one: their own work would delay the probe) post 5,000-transaction
    bodies to /calculate back to back."""
    content = json.dumps(big_body()).encode()
    stop, answered = multiprocessing.Event(), multiprocessing.Value("i", 0)
    url = f"{base}/v1/programs/ipa2022-art19/calculate"
    clients = [
        multiprocessing.Process(target=_heavy_client, args=(url, content, stop, answered))
        for _ in range(heavy_clients)
    ]
    for c in clients:
        c.start()
    if clients:
        time.sleep(2.0)  # the heavy requests under way
    latencies = asyncio.run(_probe(base, seconds))
    stop.set()
    for c in clients:
        c.join(timeout=120)
    return {
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "max": latencies[-1] * 1000,
        "heavy": answered.value,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1, help="uvicorn --workers for the service")
    parser.add_argument("--requests", type=int, default=4000, help="per measurement, 10 conn")
    parser.add_argument("--healthz-seconds", type=float, default=10.0)
    args = parser.parse_args()
    body = art19_body()
    path = "/v1/programs/ipa2022-art19"
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "bare_app.py").write_text(BARE_APP)
        port = free_port()
        proc = serve("bare_app:app", port, cwd)
        try:
            bare = measure(
                "bare pydantic endpoint",
                f"http://127.0.0.1:{port}{path}/check",
                body,
                args.requests,
            )
        finally:
            proc.terminate()
            proc.wait()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = serve("service.main:app", port, cwd, args.workers)
        try:
            keyed = {"X-API-Key": make_key(cwd)}
            results = {
                (action, who): measure(
                    f"service /{action} {who}",
                    f"{base}{path}/{action}",
                    body,
                    args.requests,
                    keyed if who == "keyed" else None,
                )
                for action in ("check", "calculate")
                for who in ("anonymous", "keyed")
            }
            quiet = healthz_under_load(base, 3.0, 0)
            loaded = healthz_under_load(base, args.healthz_seconds, 4)
        finally:
            proc.terminate()
            proc.wait()

    print(f"\nservice workers: {args.workers}; ratios to the bare endpoint (throughput, p50):")
    for (action, who), r in results.items():
        print(
            f"  /{action:9s} {who:9s}  throughput {r['rps'] / bare['rps']:.2f}x   "
            f"p50 {r['p50'] / bare['p50']:.2f}x"
        )
    calc = results[("calculate", "keyed")]
    print(
        f"keyed /calculate: {calc['rps'] / bare['rps']:.2f}x throughput (target >= 0.40), "
        f"p50 {calc['p50'] / bare['p50']:.2f}x (target <= 2)"
    )
    print(
        f"/healthz quiet: p50 {quiet['p50']:.2f} ms, p99 {quiet['p99']:.2f} ms; while 4 clients "
        f"post 5,000-transaction bodies ({loaded['heavy']:.0f} answered): p50 {loaded['p50']:.2f} "
        f"ms, p99 {loaded['p99']:.2f} ms, max {loaded['max']:.2f} ms (target p99 < 25 ms)"
    )


if __name__ == "__main__":
    main()

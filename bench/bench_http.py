"""The rules endpoint against a bare validating endpoint, both on loopback, back to back."""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, art19_body

BARE_APP = """
from fastapi import FastAPI, Request
from service.config import get_settings
from service.rules.loader import load_rules
from service.schemas.body import decode_json, validate_body

TransactionsApplication = load_rules(get_settings().rules_dir).forms.forms["ipa2022-transactions"]
app = FastAPI()

@app.post("/v1/programs/{program_id}/check")
async def check(program_id: str, request: Request) -> dict:
    validate_body(TransactionsApplication, decode_json(await request.body(), 2_000_000))
    return {}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(module: str, port: int, cwd: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            module,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=cwd,
        env={
            "PYTHONPATH": f"{ROOT}:{cwd}",
            "PATH": "/usr/bin:/bin",
            "RULES_DIR": str(ROOT / "rules"),
            "DATABASE_URL": f"sqlite:///{cwd / 'bench.db'}",
            "AUTO_MIGRATE": "true",
            "ANONYMOUS_REQUESTS_PER_MINUTE": "0",  # the load is one anonymous client
            "LOG_LEVEL": "WARNING",
        },
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=0.2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


async def load(url: str, body: dict, connections: int, requests: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        per_worker = requests // connections

        async def worker() -> None:
            for _ in range(per_worker):
                t = time.perf_counter()
                r = await client.post(url, json=body)
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return per_worker * connections / elapsed, latencies


def measure(name: str, url: str, body: dict) -> dict[str, float]:
    asyncio.run(load(url, body, 1, 200))  # warm up
    rps, _ = asyncio.run(load(url, body, 10, 4000))
    _, lat = asyncio.run(load(url, body, 1, 1500))
    lat.sort()
    out = {
        "rps": rps,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(len(lat) * 0.99)] * 1000,
    }
    print(
        f"{name:28s} {out['rps']:8,.0f} req/s (10 conn)   p50 {out['p50']:.2f} ms   p99 {out['p99']:.2f} ms (1 conn)"
    )
    return out


def main() -> None:
    body = art19_body()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_app.py").write_text(BARE_APP)
        results = {}
        for name, module in (
            ("bare validating endpoint", "bare_app:app"),
            ("rules endpoint /check", "service.main:app"),
        ):
            port = free_port()
            proc = serve(module, port, Path(tmp))
            try:
                results[name] = measure(
                    name, f"http://127.0.0.1:{port}/v1/programs/ipa2022-art19/check", body
                )
            finally:
                proc.terminate()
                proc.wait()
    bare, rules = results["bare validating endpoint"], results["rules endpoint /check"]
    print(f"ratio rules/bare throughput: {rules['rps'] / bare['rps']:.2f} (target >= 0.60)")
    print(f"rules p50 at one connection: {rules['p50']:.2f} ms (target < 1 ms)")


if __name__ == "__main__":
    main()

"""Large check / calculate bodies are evaluated in a worker process (service.evaluation): the
answers, errors included, are the same as from the worker thread that small bodies use."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from service.auth.roles import Role
from service.main import create_app
from tests.authsupport import make_key
from tests.dbsupport import example, settings_for, sqlite_url

DISQUALIFIED = "91310000MA1FL9Y9Y8"
CALCULATE = "/v1/programs/ipa2022-art19/calculate"


def test_a_worker_process_answers_as_the_thread_does(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    in_process = create_app(settings_for(url, heavy_body_bytes=1, heavy_workers=1))
    in_thread = create_app(settings_for(url, heavy_workers=0))
    many = example("ipa2022-art19")
    many["transactions"] = [copy.deepcopy(many["transactions"][i % 3]) for i in range(300)]
    bad = example("ipa2022-art19")
    bad["transactions"][1]["kind"] = "gift"
    listed = example("ipa2022-art19")
    listed["applicant"]["uscc"] = DISQUALIFIED
    with TestClient(in_process) as heavy, TestClient(in_thread) as light:
        admin = {"X-API-Key": make_key(in_thread, Role.admin)}
        entry = {
            "uscc": DISQUALIFIED,
            "reason": "虚假",
            "decided_on": "2023-05-10",
            "added_by": "t",
        }
        assert (
            light.post("/v1/admin/disqualifications", headers=admin, json=entry).status_code == 201
        )
        in_process.state.runtime.access.refresh()  # as its poll would, within 0.5 s
        for body in (example("ipa2022-art19"), many, bad, listed):
            for path in (CALCULATE, "/v1/programs/ipa2022-art19/check"):
                a, b = heavy.post(path, json=body), light.post(path, json=body)
                assert (a.status_code, a.headers["content-type"]) == (
                    b.status_code,
                    b.headers["content-type"],
                )
                assert a.json() == b.json()
        assert heavy.post(CALCULATE, json=listed).json()["eligible"] is False
        assert heavy.post(CALCULATE, json=bad).status_code == 422
        assert (
            heavy.post(
                CALCULATE, content=b"{", headers={"content-type": "application/json"}
            ).status_code
            == 422
        )
        assert in_process.state.runtime.workers._pool is not None  # the process did answer


def test_an_admin_lists_the_work_in_flight_and_cancels_a_queued_evaluation(
    tmp_path: Path,
) -> None:
    app = create_app(settings_for(sqlite_url(tmp_path), heavy_body_bytes=1, heavy_workers=1))
    raw = json.dumps(example("ipa2022-art19")).encode()
    with TestClient(app) as client:
        admin = {"X-API-Key": make_key(app, Role.admin)}
        workers = app.state.runtime.workers
        # The worker process is still loading the rules: the first calls wait in the pool.
        futures = [workers.submit("ipa2022-art19", raw, frozenset(), True, 10**6) for _ in range(6)]
        time.sleep(0.3)
        listed = client.get("/v1/admin/work", headers=admin).json()
        assert [job["id"] for job in listed] == [1, 2, 3, 4, 5, 6]
        assert {job["state"] for job in listed} <= {"queued", "running"}
        assert listed[0]["state"] == "running" and listed[-1]["state"] == "queued"
        cancelled = client.post("/v1/admin/work/6/cancellation", headers=admin)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert futures[-1].cancelled()
        running = client.post("/v1/admin/work/1/cancellation", headers=admin)
        assert running.status_code == 409 and running.json()["code"] == "already_running"
        for future in futures[:-1]:
            assert workers.outcome(future.result(timeout=120))[0] is True
        assert client.get("/v1/admin/work", headers=admin).json() == []
        gone = client.post("/v1/admin/work/1/cancellation", headers=admin)
        assert gone.status_code == 404

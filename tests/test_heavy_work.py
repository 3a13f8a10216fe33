"""Large check / calculate bodies are evaluated in a worker process (service.evaluation): the
answers, errors included, are the same as from the worker thread that small bodies use."""

from __future__ import annotations

import copy
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

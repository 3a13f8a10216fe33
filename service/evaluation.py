"""One check / calculate, from the request's bytes to the response's: decode, validate, evaluate,
render. Never on the event loop: small bodies run in a worker thread, large ones
(``HEAVY_BODY_BYTES``) in a worker process.

Why processes for large bodies: pydantic-core validates a whole application, and durable_rules
asserts all its facts, without releasing the GIL, so a 5,000-transaction application in a
thread still stops the event loop for the length of those calls (measured: 290 ms gaps). In a
process of its own it stops nothing; the loop only reads the body and writes the answer. Each
worker process loads the rules itself and has its own engine and engine lock; the parent sends
it the 第二十六条 list of its fresh snapshot with each application (a few kilobytes), so the
answer is the parent's.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Container
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from fastapi.responses import JSONResponse

from service.db.models import utcnow
from service.decision import decide
from service.engine.base import EngineError, Evaluator
from service.engine.facts import Context
from service.errors import Conflict, EvaluationFailed, NotFound, ServiceError
from service.observability.logs import REQUEST_ID
from service.rules.program import Program
from service.schemas.body import decode_json, validate_body
from service.schemas.results import render

Outcome = tuple[bool, bytes]  # eligible, the response body (JSON)


def evaluate(
    program: Program,
    raw: bytes,
    disqualified: Container[str],
    evaluator: Evaluator,
    version: str,
    with_award: bool,
    limit: int,
) -> Outcome:
    application = validate_body(program.form, decode_json(raw, limit))
    context = Context(disqualified=application.applicant.uscc in disqualified)
    try:
        decision = decide(program, application, evaluator, version, context)
    except EngineError as exc:
        raise EvaluationFailed() from exc
    return decision.eligible, bytes(JSONResponse(render(decision, with_award)).body)


class Relayed(ServiceError):
    """A ServiceError raised in a worker process, rendered there and answered as it was."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(body.get("message_zh"), body.get("message_en"))
        self.status_code = status
        self._body = body
        self._headers = headers

    def body(self) -> dict[str, Any]:
        return dict(self._body)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


# --- the worker process ------------------------------------------------------------------
_WORKER: tuple[dict[str, Program], Evaluator, str] | None = None


def _exit_with_parent(parent: int) -> None:
    """A worker holds both ends of its call queue, so it never sees the parent go: a parent
    killed (or re-raising SIGTERM past its exit handlers) would leave it waiting forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_worker(rules_dir: Path, engine: str) -> None:
    global _WORKER
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    from service.engine.durable_eval import DurableEvaluator
    from service.engine.python_eval import PythonEvaluator
    from service.rules.loader import load_rules

    book = load_rules(rules_dir)
    evaluator: Evaluator = (
        DurableEvaluator(book.programs, book.version)
        if engine == "durable_rules"
        else PythonEvaluator()
    )
    _WORKER = (book.programs, evaluator, book.version)


def _in_worker(
    program_id: str, raw: bytes, disqualified: frozenset[str], with_award: bool, limit: int
) -> tuple[Literal["ok"], bool, bytes] | tuple[Literal["error"], int, dict, dict]:
    assert _WORKER is not None, "worker not started"
    programs, evaluator, version = _WORKER
    try:
        eligible, body = evaluate(
            programs[program_id], raw, disqualified, evaluator, version, with_award, limit
        )
    except ServiceError as exc:
        return "error", exc.status_code, exc.body(), exc.headers()
    return "ok", eligible, body


# --- the parent ----------------------------------------------------------------------------
class AlreadyRunning(Conflict):
    code = "already_running"

    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"任务 {job_id} 已在执行，无法取消", f"Job {job_id} is already running: not cancelled"
        )


class Cancelled(ServiceError):
    """503 for the request whose queued evaluation an admin cancelled."""

    status_code = 503
    code = "cancelled"
    message_zh = "该评估在排队时被管理员取消，请稍后重试"
    message_en = "An admin cancelled this evaluation while it was queued; retry later"


@dataclass
class Job:
    id: int
    program_id: str
    body_bytes: int
    request_id: str | None
    submitted_at: datetime
    future: Future[Any]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "program_id": self.program_id,
            "body_bytes": self.body_bytes,
            "request_id": self.request_id,
            "submitted_at": self.submitted_at.isoformat(),
            "state": "running" if self.future.running() else "queued",
        }


@dataclass(frozen=True)
class HeavyPolicy:
    threshold_bytes: int  # bodies at least this large go to a worker process
    workers: int  # 0: every body in a thread


class WorkerPool:
    """Worker processes for large bodies, started on the first one (most processes of the test
    suite never need one) and stopped with the app."""

    def __init__(self, rules_dir: Path, engine: str, policy: HeavyPolicy) -> None:
        self._rules_dir = rules_dir
        self._engine = engine
        self.policy = policy
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}  # in flight: queued or running
        self._ids = itertools.count(1)

    def takes(self, raw: bytes) -> bool:
        return self.policy.workers > 0 and len(raw) >= self.policy.threshold_bytes

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.policy.workers,
                    mp_context=multiprocessing.get_context("spawn"),  # no fork of our threads
                    initializer=_start_worker,
                    initargs=(self._rules_dir, self._engine),
                )
            return self._pool

    def submit(
        self,
        program_id: str,
        raw: bytes,
        disqualified: frozenset[str],
        with_award: bool,
        limit: int,
    ) -> Future[Any]:
        future = self._executor().submit(
            _in_worker, program_id, raw, disqualified, with_award, limit
        )
        job = Job(next(self._ids), program_id, len(raw), REQUEST_ID.get(), utcnow(), future)
        self._jobs[job.id] = job
        future.add_done_callback(lambda _: self._jobs.pop(job.id, None))
        return future

    def jobs(self) -> list[dict[str, Any]]:
        """The evaluations in flight in this process (queued or running), oldest first."""
        return [job.view() for job in sorted(list(self._jobs.values()), key=lambda j: j.id)]

    def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a queued evaluation (its request is answered 503); a running one runs on."""
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound("任务", "job", job_id)
        view = job.view()
        if not job.future.cancel():
            raise AlreadyRunning(job_id)
        return {**view, "state": "cancelled"}

    @staticmethod
    def outcome(answer: Any) -> Outcome:
        if answer[0] == "error":
            _, status, body, headers = answer
            raise Relayed(status, body, headers)
        return answer[1], answer[2]

    def broken(self) -> None:
        """A worker died (killed, out of memory): the next body starts a fresh pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """At shutdown: cancel what is queued, let what runs finish, and wait for the worker
        processes to exit (uvicorn re-raises SIGTERM after the app's shutdown, past the exit
        handlers that would otherwise stop them)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = [
    "BrokenProcessPool",
    "Cancelled",
    "HeavyPolicy",
    "Outcome",
    "Relayed",
    "WorkerPool",
    "evaluate",
]

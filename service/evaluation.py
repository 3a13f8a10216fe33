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

import multiprocessing
import threading
from collections.abc import Container
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi.responses import JSONResponse

from service.decision import decide
from service.engine.base import EngineError, Evaluator
from service.engine.facts import Context
from service.errors import EvaluationFailed, ServiceError
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


def _start_worker(rules_dir: Path, engine: str) -> None:
    global _WORKER
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
        return self._executor().submit(_in_worker, program_id, raw, disqualified, with_award, limit)

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
        self.broken()


__all__ = ["BrokenProcessPool", "HeavyPolicy", "Outcome", "Relayed", "WorkerPool", "evaluate"]

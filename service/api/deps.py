"""What routes need, taken from the application state built once at start-up."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.auth.ratelimit import RateLimiter
from service.config import Settings
from service.db import Database
from service.db.cache import AccessCache
from service.engine.base import Evaluator
from service.errors import UnknownProgram
from service.evaluation import WorkerPool
from service.rules.loader import RuleBook
from service.rules.program import Program


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    book: RuleBook
    evaluator: Evaluator
    disqualified: Container[str]  # 第二十六条: ``uscc in rt.disqualified`` (the stored list)
    db: Database
    limiter: RateLimiter  # anonymous use of the open routes, and each API key's
    access: AccessCache  # the API keys and the 第二十六条 list, in memory
    workers: WorkerPool  # worker processes for large check / calculate bodies

    def program(self, program_id: str) -> Program:
        program = self.book.get(program_id)
        if program is None:
            raise UnknownProgram(program_id)
        return program


async def runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, one hop per request
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]

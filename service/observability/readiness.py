"""Readiness: the service can answer when its rules are loaded, its database answers at the
migrations' head, and its engine gives the oracle's answer to the canary application.

Liveness (``/healthz``) only says the process runs; a load balancer should send requests only
where ``/readyz`` is 200 (a database outage makes every stored-data request fail). The service
refuses to start on a database that answers below the head (``service.main``); the schema is
checked here too, for a database that was unreachable at start-up or was changed since.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from service.api.deps import Runtime
from service.db import migrate
from service.engine.base import EngineError
from service.errors import ServiceError
from service.observability.canary import Canary

log = logging.getLogger("service")


class NotReady(ServiceError):
    """503: a dependency the service needs is missing; ``check`` names it."""

    status_code = 503
    code = "not_ready"


def check(rt: Runtime, canary: Canary | None) -> dict[str, Any]:
    """What is ready (the body of a 200), or NotReady naming what is not (blocking: run it in a
    worker thread)."""
    if not rt.book.programs:
        raise NotReady("规则未加载", "No rules are loaded", check="rules")
    try:
        revision = migrate.current(rt.db.engine)
    except sa.exc.SQLAlchemyError as exc:
        raise NotReady("数据库无法连接", "The database is unreachable", check="database") from exc
    if revision != migrate.head():
        behind = migrate.SchemaNotCurrent(revision, migrate.head())
        raise NotReady(behind.message_zh, str(behind), check="schema", revision=revision)
    return {"database": "ok", "schema": revision, "engine": _engine(rt, canary)}


def _engine(rt: Runtime, canary: Canary | None) -> str:
    if canary is None:
        return "unchecked"  # no program of this rule book has an example application
    try:
        agrees = canary.agrees(rt.evaluator, rt.book.version)
    except EngineError as exc:
        log.error("canary evaluation of %s failed: %s", canary.program.id, exc)
        agrees = False
    if not agrees:
        raise NotReady(
            f"规则引擎对 {canary.program.id} 示例申报的结论与参照实现不一致或未能给出结论",
            f"The rules engine failed or disagreed with the oracle on {canary.program.id}'s "
            "example application",
            check="engine",
            program_id=canary.program.id,
        )
    return "ok"

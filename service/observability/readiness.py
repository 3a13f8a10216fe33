"""Readiness: the service can answer when its rules are loaded and its database answers.

Liveness (``/healthz``) only says the process runs; a load balancer should send requests only
where ``/readyz`` is 200 (a database outage makes every stored-data request fail).
"""

from __future__ import annotations

import sqlalchemy as sa

from service.api.deps import Runtime
from service.errors import ServiceError


class NotReady(ServiceError):
    """503: a dependency the service needs is missing; ``check`` names it."""

    status_code = 503
    code = "not_ready"


def check(rt: Runtime) -> None:
    """Raises NotReady naming what is missing (blocking: run it in a worker thread)."""
    if not rt.book.programs:
        raise NotReady("规则未加载", "No rules are loaded", check="rules")
    try:
        with rt.db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise NotReady("数据库无法连接", "The database is unreachable", check="database") from exc

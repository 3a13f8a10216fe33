"""Operations: structured logs with a request id, metrics, readiness (installed by service.main).

``install(app)`` configures logging, puts the request middleware around the whole app and
serves ``/metrics``; routes count evaluations with ``count_evaluation``; ``/readyz`` (in
``service.api.health``) asks ``readiness.check``.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp

from service.observability.logs import REQUEST_ID, configure_logging
from service.observability.metrics import Metrics, metrics_endpoint, metrics_of
from service.observability.middleware import HEADER, RequestMiddleware

__all__ = ["HEADER", "REQUEST_ID", "Metrics", "count_evaluation", "install", "metrics_of"]


def install(app: FastAPI) -> None:
    """Wire logging, request ids and metrics into ``app`` (called once by create_app)."""
    settings = app.state.runtime.settings
    configure_logging(settings.log_format, settings.log_level)
    metrics = Metrics()
    app.state.metrics = metrics
    dependencies = []
    if settings.metrics_role is not None:  # METRICS_ROLE: scrapes send that role's key
        # here, not at the top: service.auth.guard imports the runtime, which imports us
        from service.auth.guard import require
        from service.auth.roles import Role

        dependencies.append(Depends(require(Role(settings.metrics_role))))
    app.add_api_route(
        "/metrics", metrics_endpoint, include_in_schema=False, dependencies=dependencies
    )

    # Outermost, around Starlette's ServerErrorMiddleware (add_middleware would put it inside):
    # unhandled errors are then counted, logged with the request id, and answered with it.
    build_stack = app.build_middleware_stack

    def build_with_operations() -> ASGIApp:
        return RequestMiddleware(build_stack(), metrics)

    app.build_middleware_stack = build_with_operations  # type: ignore[method-assign]


def count_evaluation(app: FastAPI, program_id: str, eligible: bool) -> None:
    """One evaluation answered (check / calculate), for ``subsidy_evaluations_total``."""
    metrics_of(app).count_evaluation(program_id, eligible)

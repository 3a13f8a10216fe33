"""The request middleware: a request id for each request, its access line and its metrics.

Pure ASGI (no BaseHTTPMiddleware: no extra task per request, bodies pass through untouched).
It wraps the whole stack, outside Starlette's ServerErrorMiddleware, so an unhandled error's
500 is counted, carries the request id header, and the error's log line has the id too.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.logs import REQUEST_ID, request_id_from
from service.observability.metrics import UNMATCHED, Metrics

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
# Probes and scrapes every few seconds: their access lines only at DEBUG (still counted).
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("service.access")


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == _HEADER_KEY), None)
        request_id = request_id_from(None if incoming is None else incoming.decode("latin-1"))
        token = REQUEST_ID.set(request_id)
        root_path = scope.get("root_path", "")
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope, root_path)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            level = logging.ERROR if status >= 500 else logging.INFO
            if route in QUIET_ROUTES and status < 500:
                level = logging.DEBUG
            access_log.log(
                level,
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            REQUEST_ID.reset(token)


def _route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template (``/v1/programs/{program_id}/calculate``); for a mount (the
    Swagger UI assets) its prefix and ``{path}``; one shared label for everything unrouted (404s
    for arbitrary paths, and bodies refused before routing)."""
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        return str(route)
    mounted = scope.get("root_path", "")
    if mounted != root_path:  # a Mount matched: it extends root_path with its prefix
        return f"{mounted.removeprefix(root_path)}/{{path}}"
    return UNMATCHED

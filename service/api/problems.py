"""Every 4xx and 5xx as RFC 9457 problem details (``application/problem+json``), in Chinese and
English, never with a stack trace: our own errors, FastAPI's validation errors, the router's
404/405 and anything unexpected. A client that hangs up mid-body gets no problem (nobody is
there to read it): its request is recorded as a 499."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from service.errors import (
    PROBLEM_JSON,
    DatabaseUnavailable,
    HttpProblem,
    InvalidRequest,
    ServiceError,
)
from service.schemas.body import path_of
from service.schemas.messages import fill_messages, with_messages

log = logging.getLogger("service")
# nginx's "client closed request": nobody reads the answer, and it is no fault of the server's
# (not a 5xx in the access line or in http_requests_total).
CLIENT_CLOSED_REQUEST = 499


def problem_response(exc: ServiceError, instance: str) -> JSONResponse:
    if isinstance(exc, InvalidRequest):
        fill_messages(exc.extra.get("detail") or [])
    body = {**exc.body(), "instance": instance}
    return JSONResponse(
        body, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=exc.headers()
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("%s: %s", exc.code, exc.__cause__ or exc)
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "loc": list(e["loc"]),
                "path": path_of(tuple(e["loc"])[1:]),
                "type": e["type"],
                "msg": e["msg"],
            }
            for e in exc.errors()
        ]
        with_messages(detail, list(exc.errors()), None)
        return problem_response(InvalidRequest(detail), request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(HttpProblem(exc.status_code, exc.headers), request.url.path)

    @app.exception_handler(ClientDisconnect)
    async def client_disconnected(request: Request, exc: ClientDisconnect) -> Response:
        log.info("the client hung up before its request was complete")
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        # Unreachable, locked past its timeout, or (SQLite) its tables gone: an outage, a 503.
        log.error("database unavailable: %s", exc.orig or exc)
        return problem_response(DatabaseUnavailable(), request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(ServiceError(), request.url.path)

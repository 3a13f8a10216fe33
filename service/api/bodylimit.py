"""413 before the body is read: a pure ASGI middleware that refuses a declared Content-Length
above the limit at once, and stops a streamed body the moment it passes the limit. Audit uploads
have their own, larger limit; everything else has ``Settings.max_body_bytes``."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem_response
from service.errors import BodyTooLarge

AUDIT_PATH = "/v1/audit"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, audit_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.audit_limit = audit_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.audit_limit if path == AUDIT_PATH else self.limit
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await problem_response(BodyTooLarge(limit), path)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)  # rendered by the app's handlers, as a 413
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

"""Strict input. A body where JSON is expected must say it is JSON (``text/plain`` is a 415,
never parsed as JSON). Unknown query parameters are a 422, as unknown body fields are: ``?include_remove=true`` for
``include_removed`` must not quietly list the wrong thing. Only on routes that take query
parameters (where a typo could hide); probes and cache-busters elsewhere stay harmless."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from service.errors import InvalidRequest, UnsupportedMediaType
from service.schemas.body import decode_json


async def reject_unknown_query(request: Request) -> None:
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = {param.alias for param in _query_params(dependant)}
    if not known:
        return
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidRequest(
            [
                {
                    "loc": ["query", name],
                    "path": name,
                    "type": "extra_forbidden",
                    "msg": f"未知的查询参数 / unknown query parameter (known: {sorted(known)})",
                }
                for name in unknown
            ]
        )


def _query_params(dependant: object) -> list:  # type: ignore[type-arg]
    found = list(getattr(dependant, "query_params", []))
    for sub in getattr(dependant, "dependencies", []):
        found.extend(_query_params(sub))
    return found


def is_json(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, in UTF-8 (the only charset JSON has)."""
    if not content_type:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


async def read_body(request: Request) -> bytes:
    """The raw body of a route that takes JSON (415 unless it says it is JSON); the route
    decodes it with decode_json, in a worker thread when the body may be large."""
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise UnsupportedMediaType(content_type, ["application/json"])
    return await request.body()


async def read_json(request: Request, limit: int) -> Any:
    """The body of a route that takes JSON: 415 unless it says it is JSON, then decode_json."""
    return decode_json(await read_body(request), limit)


# The responses of a route that reads JSON with read_json, for its OpenAPI document.
JSON_BODY: dict[int | str, dict[str, Any]] = {
    415: {"description": "请求体须为 JSON（application/json） / the body must be JSON"}
}

"""Unknown query parameters are a 422, as unknown body fields are: ``?include_remove=true`` for
``include_removed`` must not quietly list the wrong thing. Only on routes that take query
parameters (where a typo could hide); probes and cache-busters elsewhere stay harmless."""

from __future__ import annotations

from fastapi import Request

from service.errors import InvalidRequest


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

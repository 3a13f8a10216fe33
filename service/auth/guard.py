"""The dependencies routes declare: ``require(Role.reviewer, ...)`` for protected routes and
``open_access`` for the open ones (anonymous callers are rate-limited there).

No key, or an unknown or revoked one → 401; a key whose role may not → 403; a key past its
role's rate limit → 429. Whether a portal
may see one particular application is the route's business (it answers 404, as for a record
that does not exist, so that nobody learns another portal's applications exist).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from service.api.deps import Runtime, RuntimeDep
from service.auth import keys
from service.auth.roles import Principal, Role
from service.errors import Forbidden, Unauthenticated

API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    auto_error=False,
    description=(
        "API密钥（由管理员以 `python -m service.auth create` 创建）。核验、计算与项目目录无需密钥"
        "（匿名访问限速）。 / API key (created by an admin with `python -m service.auth create`). "
        "Check, calculate and the program catalogue need none (anonymous use is rate-limited)."
    ),
)
KeyHeader = Annotated[str | None, Security(API_KEY)]
MAX_KEY_LENGTH = 200


def _lookup(rt: Runtime, key: str) -> Principal | None:
    with rt.db.transaction(write=False) as session:
        return keys.principal(session, key)


async def _principal(rt: Runtime, key: str | None) -> Principal | None:
    """The key's principal, from memory (service.db.cache) or, while the cache is not fresh,
    from the database; then one request counted against the key's own rate limit."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Unauthenticated()
    snapshot = rt.access.current()
    if snapshot is not None:
        principal = snapshot.keys.get(keys.hash_key(key))
    else:
        principal = await run_in_threadpool(_lookup, rt, key)
    if principal is None:
        raise Unauthenticated()
    await rt.limiter.keyed(principal)
    return principal


def require(*roles: Role) -> Callable[[Request, Runtime, str | None], Awaitable[Principal]]:
    """A dependency admitting only keys with one of ``roles``."""
    allowed = [role.value for role in roles]

    async def guard(request: Request, rt: RuntimeDep, key: KeyHeader = None) -> Principal:
        principal = await _principal(rt, key)
        if principal is None:
            raise Unauthenticated()
        if principal.role not in roles:
            raise Forbidden(principal.role.value, allowed)
        request.state.principal = principal
        return principal

    guard.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the OpenAPI builder
    return guard


async def open_access(request: Request, rt: RuntimeDep, key: KeyHeader = None) -> Principal | None:
    """Open routes: anonymous callers are limited per client address, key holders per key."""
    principal = await _principal(rt, key)
    if principal is None:
        client = request.client.host if request.client else "unknown"
        await rt.limiter.anonymous(client)
    else:
        request.state.principal = principal
    return principal

"""Rate limits, by the ``limits`` library (sliding-window counters): anonymous use of the open
routes per client address, and every request made with an API key per key, with a limit per
role (``ANONYMOUS_REQUESTS_PER_MINUTE``, ``PORTAL_REQUESTS_PER_MINUTE``, ...; 0: no limit).

The counters live in this process's memory by default; with ``REDIS_URL`` set they live in
Redis, so that several processes share one limit (a client spreading its requests over the
workers gets no more than from one)."""

from __future__ import annotations

import math
import time

from fastapi.concurrency import run_in_threadpool
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from service.auth.roles import Principal, Role
from service.config import Settings
from service.errors import RateLimited

ANONYMOUS = "anonymous"


def _item(per_minute: int) -> RateLimitItem | None:
    return RateLimitItemPerMinute(per_minute) if per_minute > 0 else None


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.shared = settings.redis_url is not None
        self.storage: Storage = (
            RedisStorage(settings.redis_url, key_prefix=settings.redis_key_prefix)
            if settings.redis_url is not None
            else MemoryStorage()
        )
        self._limiter = SlidingWindowCounterRateLimiter(self.storage)
        self._anonymous = _item(settings.anonymous_requests_per_minute)
        self._per_role = {
            Role.portal: _item(settings.portal_requests_per_minute),
            Role.reviewer: _item(settings.reviewer_requests_per_minute),
            Role.auditor: _item(settings.auditor_requests_per_minute),
            Role.admin: _item(settings.admin_requests_per_minute),
        }

    async def anonymous(self, client: str) -> None:
        """One anonymous request from ``client``; raises RateLimited beyond the limit."""
        if self._anonymous is not None:
            await self._take(self._anonymous, False, ANONYMOUS, client)

    async def keyed(self, principal: Principal) -> None:
        """One request made with ``principal``'s key, limited by its role's setting."""
        item = self._per_role[principal.role]
        if item is not None:
            await self._take(item, True, "key", str(principal.key_id))

    async def _take(self, item: RateLimitItem, keyed: bool, *identifiers: str) -> None:
        if self.shared:  # a round trip to Redis: not on the event loop
            await run_in_threadpool(self._hit, item, keyed, *identifiers)
        else:  # memory: a dictionary update, microseconds
            self._hit(item, keyed, *identifiers)

    def _hit(self, item: RateLimitItem, keyed: bool, *identifiers: str) -> None:
        if self._limiter.hit(item, *identifiers):
            return
        reset = self._limiter.get_window_stats(item, *identifiers).reset_time
        raise RateLimited(max(1, math.ceil(reset - time.time())), keyed=keyed)

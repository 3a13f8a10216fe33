"""Anonymous use of the open routes (the catalogue, check, calculate): a token bucket per client
address, in memory (per process: behind several workers the limit is per worker). Requests
with a valid API key are not limited here."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from service.errors import RateLimited

MAX_CLIENTS = 100_000  # buckets kept; the least recently seen are dropped beyond this


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """One request from ``client``; raises RateLimited when its bucket is empty."""
        if self.capacity <= 0:
            return  # 0: no limit
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                raise RateLimited(max(1, math.ceil((1.0 - tokens) / self.rate)))
            self._buckets[client] = (tokens - 1.0, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)

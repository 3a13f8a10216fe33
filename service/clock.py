"""The server's clock: one dependency, so that every stored time (``received_at``) comes from
the service and never from a request body, and tests can set it.

Routes take ``ClockDep``; it reads ``app.state.clock`` when a test has set one (``set_clock``)
and the system clock otherwise. The server's own times are shown in Asia/Shanghai (UTC+8, no
daylight saving since 1991), the bureau's time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import Depends, Request

Clock = Callable[[], datetime]
EIGHT_HOURS = timedelta(hours=8)
ZERO = timedelta(0)
SHANGHAI = timezone(EIGHT_HOURS, "Asia/Shanghai")


def system_clock() -> datetime:
    return datetime.now(UTC)


def set_clock(app: Any, clock: Clock | None) -> None:
    """Tests: make ``clock`` the app's clock (None: the system clock again)."""
    app.state.clock = clock


def clock(request: Request) -> Clock:
    """The app's clock, always in UTC (SQLite keeps no zone: every stored time is UTC)."""
    chosen: Clock | None = getattr(request.app.state, "clock", None)
    if chosen is None:
        return system_clock
    return lambda: chosen().astimezone(UTC)


ClockDep = Annotated[Clock, Depends(clock)]


def shanghai(moment: datetime | None) -> str | None:
    """A stored moment (UTC; SQLite drops the zone) as the bureau reads it."""
    if moment is None:
        return None
    if moment.tzinfo is not None and moment.utcoffset() != ZERO:
        moment = moment.astimezone(UTC)
    # Shifting the UTC wall time is exact (no zone rules) and much cheaper than astimezone.
    return (moment.replace(tzinfo=None) + EIGHT_HOURS).replace(tzinfo=SHANGHAI).isoformat()

"""The API keys and the 第二十六条 list, served from memory: every keyed request and every check
reads them, and both change a few times a day.

How a change reaches every process (the choice, and why):

- **In this process, at once.** ``Database`` tells the cache when a transaction that wrote an
  ``api_keys`` or ``disqualifications`` row commits (``Database.on_commit``); the cache reloads
  before the writer's response is sent.
- **In the other processes, within ``CACHE_POLL_SECONDS`` (0.5 s).** A background thread asks
  the database for a fingerprint of both tables, four counts in one statement (~0.2 ms on a few
  thousand rows), and reloads when it moved. Rows are never deleted and a key's revocation or an
  entry's removal is never undone, so every change raises one of the counts: rows in each table,
  revoked keys, removed entries. This needs no migration, no extra server and no connection kept
  open, works on SQLite and PostgreSQL alike, and cannot miss a change (a lost PostgreSQL NOTIFY
  or Redis message would need a poll behind it anyway).

A cache that has not been refreshed for ``STALE_AFTER_SECONDS`` (the database stopped
answering) is not trusted: callers then ask the database directly, as they did before the
cache, so a key revoked during an outage is not honoured from memory.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select

from service.auth.roles import Principal, Role
from service.db.models import ApiKey, Disqualification
from service.db.session import Database

log = logging.getLogger("service")

CACHE_POLL_SECONDS = 0.5
STALE_AFTER_SECONDS = 5.0
TABLES = frozenset({"api_keys", "disqualifications"})
FINGERPRINT = sa.text(
    "SELECT (SELECT count(*) FROM api_keys), (SELECT count(revoked_at) FROM api_keys),"
    " (SELECT count(*) FROM disqualifications), (SELECT count(removed_at) FROM disqualifications)"
)


@dataclass(frozen=True)
class Snapshot:
    fingerprint: tuple[int, ...]
    keys: dict[str, Principal]  # key hash -> principal, active keys only
    disqualified: frozenset[str]  # USCCs with an active entry
    taken: float  # time.monotonic() when it was read


class AccessCache:
    """Active keys by hash and the active 第二十六条 USCCs, replaced whole on each reload (a
    reader sees one snapshot or the next, never half of one)."""

    def __init__(self, db: Database, poll_seconds: float = CACHE_POLL_SECONDS) -> None:
        self._db = db
        self._poll_seconds = poll_seconds
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        db.on_commit(self._committed)

    # --- reading -----------------------------------------------------------------------------
    def current(self) -> Snapshot | None:
        """The snapshot, or None when there is none or it is stale (ask the database)."""
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - snapshot.taken > STALE_AFTER_SECONDS:
            return None
        return snapshot

    # --- refreshing --------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Reload when the fingerprint moved (or always, with ``force``); True if reloaded.
        Raises SQLAlchemyError when the database does not answer."""
        with self._reload_lock, self._db.transaction(write=False) as session:
            fingerprint = tuple(int(n) for n in session.execute(FINGERPRINT).one())
            old = self._snapshot
            if not force and old is not None and old.fingerprint == fingerprint:
                self._snapshot = Snapshot(fingerprint, old.keys, old.disqualified, time.monotonic())
                return False
            rows = session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None)))
            keys = {
                row.key_hash: Principal(row.id, row.name, Role(row.role), frozenset(row.applicants))
                for row in rows
                if row.id is not None
            }
            listed = session.exec(
                select(Disqualification.uscc).where(col(Disqualification.removed_at).is_(None))
            )
            self._snapshot = Snapshot(fingerprint, keys, frozenset(listed), time.monotonic())
            return True

    def _committed(self, tables: set[str]) -> None:
        if tables & TABLES:
            try:
                self.refresh(force=True)
            except sa.exc.SQLAlchemyError as exc:  # the poll will retry
                log.warning("key / 第二十六条 cache reload failed: %s", exc)

    def start(self) -> None:
        """Load now if the database answers, then poll in a daemon thread until ``stop``."""
        try:
            self.refresh(force=True)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("key / 第二十六条 cache not loaded yet: %s", exc)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="access-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        failing = False
        while not self._stop.wait(self._poll_seconds):
            try:
                self.refresh()
                failing = False
            except Exception as exc:  # keep polling whatever the database says
                if not failing:
                    log.warning("key / 第二十六条 cache refresh failed: %s", exc)
                failing = True

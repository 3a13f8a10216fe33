"""The audit log: every change to applications, approvals, rounds, allocations, the 第二十六条
list and API keys, appended in the same transaction as the change, each row holding the hash of
the row before it (``hash = sha256(prev_hash + canonical JSON of the row)``). Rewriting or
deleting a row breaks the chain from there on; ``python -m service.auditlog verify`` names the
first broken row.

Concurrent writers never fork the chain: the tail is read under a lock (PostgreSQL: a
transaction-level advisory lock; SQLite: writers hold the database's write lock from BEGIN
IMMEDIATE), and ``seq`` is the primary key, so a second row with the same number cannot exist.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.db.models import AuditEntry, as_utc

GENESIS = "0" * 64
BATCH = 1000


@dataclass(frozen=True)
class Actor:
    """Who did it: the authenticated key (its id and name), or a command run on the server."""

    key_id: int | None
    name: str


COMMAND_LINE = Actor(None, "command line")


def lock_tail(session: Session) -> None:
    """Writers of one database take turns at the tail (SQLite: BEGIN IMMEDIATE already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('audit_log'))"))


def _canonical(row: AuditEntry) -> str:
    return json.dumps(
        {
            "seq": row.seq,
            "at": as_utc(row.at).isoformat(),
            "actor_key": row.actor_key,
            "actor_name": row.actor_name,
            "action": row.action,
            "entity": row.entity,
            "entity_id": row.entity_id,
            "payload": row.payload,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def row_hash(row: AuditEntry) -> str:
    return hashlib.sha256((row.prev_hash + _canonical(row)).encode("utf-8")).hexdigest()


def append(
    session: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: Any,
    payload: dict[str, Any],
    at: datetime,
) -> AuditEntry:
    """Append one row after the current tail (in the caller's transaction)."""
    lock_tail(session)
    tail = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)).first()
    row = AuditEntry(
        seq=1 if tail is None else tail.seq + 1,
        at=as_utc(at),
        actor_key=actor.key_id,
        actor_name=actor.name,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        payload=json.loads(json.dumps(payload, ensure_ascii=False, default=str)),
        prev_hash=GENESIS if tail is None else tail.hash,
        hash="",
    )
    row.hash = row_hash(row)
    session.add(row)
    session.flush()
    return row


def rows(session: Session, after: int = 0, limit: int = BATCH) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry)
            .where(AuditEntry.seq > after)
            .order_by(col(AuditEntry.seq))
            .limit(limit)
        ).all()
    )


def _all(session: Session) -> Iterator[AuditEntry]:
    after = 0
    while batch := rows(session, after):
        yield from batch
        after = batch[-1].seq


@dataclass(frozen=True)
class Broken:
    seq: int
    why: str


def verify(session: Session) -> tuple[int, Broken | None]:
    """How many rows were checked, and the first broken one (None: the chain holds)."""
    prev_hash, expected, count = GENESIS, 1, 0
    for row in _all(session):
        count += 1
        if row.seq != expected:
            return count, Broken(expected, f"row {expected} is missing (next is {row.seq})")
        if row.prev_hash != prev_hash:
            return count, Broken(row.seq, "prev_hash is not the previous row's hash")
        if row_hash(row) != row.hash:
            return count, Broken(row.seq, "the row's content does not match its hash")
        prev_hash, expected = row.hash, expected + 1
    return count, None


def view(row: AuditEntry) -> dict[str, Any]:
    from service.clock import shanghai

    return {
        "seq": row.seq,
        "at": shanghai(row.at),
        "actor": {"key_id": row.actor_key, "name": row.actor_name},
        "action": row.action,
        "entity": row.entity,
        "entity_id": row.entity_id,
        "payload": row.payload,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def main(argv: Sequence[str] | None = None, database_url: str | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["verify"]:
        print("usage: python -m service.auditlog verify", file=sys.stderr)
        return 2
    from service.config import get_settings
    from service.db.session import Database

    db = Database(database_url or get_settings().database_url)
    try:
        with db.transaction(write=False) as session:
            count, broken = verify(session)
    finally:
        db.dispose()
    if broken is None:
        print(f"audit log intact: {count} rows / 审计日志完整：{count} 条")
        return 0
    print(
        f"audit log broken at row {broken.seq}: {broken.why} / 审计日志第 {broken.seq} 条被改动",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

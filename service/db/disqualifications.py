"""第二十六条: the stored list of organisations disqualified for fraud from every program of the
bureau (checked by every ``ipa2022`` program through ``context.disqualified``).

Entries are never deleted: removing one records who removed it, when and why, so the list can
always say who was disqualified on a given day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.auditlog import Actor, append
from service.db.cache import AccessCache
from service.db.models import Disqualification, utcnow
from service.db.session import Database
from service.errors import Conflict, NotFound
from service.rules.program import Program

SHANGHAI = ZoneInfo("Asia/Shanghai")


class AlreadyDisqualified(Conflict):
    code = "already_disqualified"

    def __init__(self, uscc: str, entry_id: int | None) -> None:
        super().__init__(
            f"{uscc} 已在第二十六条取消资格名单中",
            f"{uscc} is already on the 第二十六条 disqualification list",
            uscc=uscc,
            entry_id=entry_id,
        )


class AlreadyRemoved(Conflict):
    code = "already_removed"

    def __init__(self, entry_id: int) -> None:
        super().__init__(
            f"名单条目 {entry_id} 已被移除", f"List entry {entry_id} was already removed"
        )


def applies_to(program: Program) -> bool:
    """Whether the program's conditions read the list (every ipa2022 program does)."""
    return any(ref.path == ("context", "disqualified") for ref in program.facts)


def active_entry(session: Session, uscc: str) -> Disqualification | None:
    return session.exec(
        select(Disqualification).where(
            Disqualification.uscc == uscc, col(Disqualification.removed_at).is_(None)
        )
    ).first()


def is_disqualified(session: Session, uscc: str) -> bool:
    return active_entry(session, uscc) is not None


def add(
    session: Session,
    uscc: str,
    reason: str,
    decided_on: date,
    added_by: str,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Disqualification:
    existing = active_entry(session, uscc)
    if existing is not None:
        raise AlreadyDisqualified(uscc, existing.id)
    entry = Disqualification(
        uscc=uscc,
        reason=reason,
        decided_on=decided_on,
        added_by=added_by,
        added_at=now or utcnow(),
    )
    try:
        with session.begin_nested():  # a concurrent add of the same USCC: the index decides
            session.add(entry)
            session.flush()
    except IntegrityError as exc:
        raise AlreadyDisqualified(uscc, None) from exc
    append(
        session,
        actor or Actor(None, added_by),
        "disqualification.add",
        "disqualification",
        entry.id,
        {"uscc": uscc, "reason": reason, "decided_on": decided_on.isoformat()},
        entry.added_at,
    )
    return entry


def remove(
    session: Session,
    entry_id: int,
    removed_by: str,
    reason: str,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Disqualification:
    entry = session.get(Disqualification, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound("名单条目", "disqualification entry", entry_id)
    if entry.removed_at is not None:
        raise AlreadyRemoved(entry_id)
    entry.removed_at = now or utcnow()
    entry.removed_by = removed_by
    entry.removal_reason = reason
    session.add(entry)
    session.flush()
    append(
        session,
        actor or Actor(None, removed_by),
        "disqualification.remove",
        "disqualification",
        entry.id,
        {"uscc": entry.uscc, "reason": reason},
        entry.removed_at,
    )
    return entry


def entries(session: Session, include_removed: bool) -> list[Disqualification]:
    query = select(Disqualification).order_by(col(Disqualification.id))
    if not include_removed:
        query = query.where(col(Disqualification.removed_at).is_(None))
    return list(session.exec(query).all())


def seed(db: Database, usccs: Iterable[str], source: str, today: datetime | None = None) -> int:
    """Add each USCC the database has never listed (an admin's removal is not undone)."""
    decided_on = (today or utcnow()).astimezone(SHANGHAI).date()
    added = 0
    with db.transaction() as session:
        for uscc in sorted(set(usccs)):
            if session.exec(
                select(Disqualification.id).where(Disqualification.uscc == uscc)
            ).first():
                continue
            add(
                session,
                uscc,
                f"listed in {source} (DISQUALIFIED_FILE)",
                decided_on,
                f"seed:{source}",
            )
            added += 1
    return added


class StoredDisqualificationList:
    """``uscc in list``, answered from the cache's snapshot of the stored list (service.db.cache),
    or by the database (one short read transaction) while there is no fresh snapshot."""

    def __init__(self, db: Database, cache: AccessCache) -> None:
        self._db = db
        self._cache = cache

    def __contains__(self, uscc: object) -> bool:
        if not isinstance(uscc, str):
            return False
        snapshot = self._cache.current()
        if snapshot is not None:
            return uscc in snapshot.disqualified
        with self._db.transaction(write=False) as session:
            return is_disqualified(session, uscc)

"""API keys: created (the key is shown once), looked up by its SHA-256, revoked (never
deleted). Keys are 256 bits from ``secrets``; a fast hash is enough for such keys, and lets
every request be checked with one indexed lookup."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from service.auditlog import Actor, append
from service.auth.roles import ALL_APPLICANTS, Principal, Role
from service.clock import shanghai
from service.db import locks
from service.db.models import ApiKey, utcnow
from service.errors import Conflict, InvalidRequest, NotFound
from service.schemas.identifiers import validate_uscc

KEY_PREFIX = "sk_"
SHOWN_PREFIX = 10  # characters kept in clear, to recognise a key in a list


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyRequest:
    name: str
    role: Role
    applicants: tuple[str, ...]
    created_by: str


class AlreadyRevoked(Conflict):
    code = "already_revoked"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"API密钥 {key_id} 已被吊销", f"API key {key_id} was already revoked")


class LastAdmin(Conflict):
    code = "last_admin"

    def __init__(self, key_id: int) -> None:
        super().__init__(
            f"API密钥 {key_id} 是最后一个有效的管理员密钥，不能吊销（请先新建一个管理员密钥）",
            f"API key {key_id} is the last active admin key and cannot be revoked "
            "(create another admin key first)",
        )


def _uscc_problem(uscc: str) -> str | None:
    try:
        validate_uscc(uscc)
    except ValueError as exc:
        return str(exc)
    return None


def _problems(req: KeyRequest) -> list[tuple[str, str]]:
    if req.role is not Role.portal:
        if req.applicants:
            return [
                ("applicants", "只有 portal 密钥绑定申报单位 / only portal keys have applicants")
            ]
        return []
    if not req.applicants:
        return [("applicants", "portal 密钥须绑定至少一个申报单位 / a portal key needs applicants")]
    return [
        (f"applicants[{i}]", problem)
        for i, uscc in enumerate(req.applicants)
        if uscc != ALL_APPLICANTS and (problem := _uscc_problem(uscc)) is not None
    ]


def create(
    session: Session, req: KeyRequest, actor: Actor | None = None, now: datetime | None = None
) -> tuple[ApiKey, str]:
    """Store a new key; returns the row and the key itself (shown this once, never stored)."""
    problems = _problems(req)
    if problems:
        raise InvalidRequest(
            [
                {"loc": ["body", path], "path": path, "type": "value_error", "msg": msg}
                for path, msg in problems
            ]
        )
    key = new_key()
    row = ApiKey(
        key_hash=hash_key(key),
        prefix=key[:SHOWN_PREFIX],
        name=req.name,
        role=req.role.value,
        applicants=sorted(set(req.applicants)),
        created_by=req.created_by,
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    append(
        session,
        actor or Actor(None, req.created_by),
        "api_key.create",
        "api_key",
        row.id,
        {"name": row.name, "role": row.role, "applicants": row.applicants, "prefix": row.prefix},
        row.created_at,
    )
    return row, key


def revoke(
    session: Session,
    key_id: int,
    revoked_by: str,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> ApiKey:
    """Revoke a key; the last active admin key stays (nobody could manage keys after it)."""
    locks.hold(session, "api_keys:admins")
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise NotFound("API密钥", "API key", key_id)
    if row.revoked_at is not None:
        raise AlreadyRevoked(key_id)
    if row.role == Role.admin.value:
        admins = session.exec(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.role == Role.admin.value, col(ApiKey.revoked_at).is_(None))
        ).one()
        if int(admins) <= 1:
            raise LastAdmin(key_id)
    row.revoked_at = now or utcnow()
    row.revoked_by = revoked_by
    session.add(row)
    session.flush()
    append(
        session,
        actor or Actor(None, revoked_by),
        "api_key.revoke",
        "api_key",
        row.id,
        {"name": row.name, "role": row.role},
        row.revoked_at,
    )
    return row


def listed(session: Session) -> Iterable[ApiKey]:
    return session.exec(select(ApiKey).order_by(col(ApiKey.id)))


def principal(session: Session, key: str) -> Principal | None:
    """The principal of an active key; None for an unknown or revoked one."""
    row = session.exec(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), col(ApiKey.revoked_at).is_(None))
    ).first()
    if row is None or row.id is None:
        return None
    return Principal(row.id, row.name, Role(row.role), frozenset(row.applicants))


def view(row: ApiKey) -> dict[str, Any]:
    """A key as listed: never the key, never its hash."""
    return {
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "role": row.role,
        "applicants": row.applicants,
        "created_by": row.created_by,
        "created_at": shanghai(row.created_at),
        "received_at": shanghai(row.created_at),
        "active": row.revoked_at is None,
        "revoked_at": shanghai(row.revoked_at),
        "revoked_by": row.revoked_by,
    }

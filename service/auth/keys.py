"""API keys: created (the key is shown once), looked up by its SHA-256, revoked (never
deleted). Keys are 256 bits from ``secrets``; a fast hash is enough for such keys, and lets
every request be checked with one indexed lookup."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from service.auth.roles import ALL_APPLICANTS, Principal, Role
from service.db.models import ApiKey, as_utc, utcnow
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


def create(session: Session, req: KeyRequest) -> tuple[ApiKey, str]:
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
    )
    session.add(row)
    session.flush()
    return row, key


def revoke(session: Session, key_id: int, revoked_by: str) -> ApiKey:
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise NotFound("API密钥", "API key", key_id)
    if row.revoked_at is not None:
        raise AlreadyRevoked(key_id)
    row.revoked_at = utcnow()
    row.revoked_by = revoked_by
    session.add(row)
    session.flush()
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
        "created_at": as_utc(row.created_at).isoformat(),
        "active": row.revoked_at is None,
        "revoked_at": None if row.revoked_at is None else as_utc(row.revoked_at).isoformat(),
        "revoked_by": row.revoked_by,
    }

"""Serialising writers that must see each other's rows: claims of one program (the ledger, 一次性)
and allocations of one fund (第三条). On PostgreSQL a transaction-level advisory lock, released
at commit; on SQLite every writer already holds the database's write lock (BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session


def hold(session: Session, name: str) -> None:
    """Wait for, then hold until the transaction ends, the lock called ``name``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})

"""The database: one engine per process from ``Settings.database_url``, one transaction per
request.

SQLite (the default) serialises writers: a write transaction starts with ``BEGIN IMMEDIATE`` so
two writers never both read and then fail to upgrade their lock; readers use plain ``BEGIN``.
On PostgreSQL, concurrent writers are kept apart by unique constraints (idempotency keys, one
application per guide year) and row locks (allocation, see ``service.db.rounds``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_S = 30
WRITTEN = "written_tables"  # session.info key: the tables this transaction's flushes wrote


@sa.event.listens_for(Session, "after_flush")
def _note_written(session: Session, _: Any) -> None:
    written = session.info.setdefault(WRITTEN, set())
    for row in (*session.new, *session.dirty, *session.deleted):
        table = getattr(row, "__tablename__", None)
        if table is not None:
            written.add(table)


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN (pysqlite's own is deferred, always).
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._writer = self.engine.execution_options(write=True)
        self._on_commit: list[Callable[[set[str]], None]] = []

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        bind = self._writer if write else self.engine
        with Session(bind, expire_on_commit=False) as session:
            with session.begin():
                yield session
            written = session.info.get(WRITTEN)
        if written:
            for callback in self._on_commit:
                callback(written)

    def on_commit(self, callback: Callable[[set[str]], None]) -> None:
        """Call ``callback(tables)`` after each committed transaction that wrote rows (through
        the ORM) of those tables: the key / 第二十六条 cache reloads at once in this process."""
        self._on_commit.append(callback)

    def dispose(self) -> None:
        self.engine.dispose()

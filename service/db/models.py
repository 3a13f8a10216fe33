"""The stored records: applications, their evaluations, funding rounds, allocations and the
第二十六条 disqualification list. One place for every table; ``migrations/`` creates them.

Money is integer fen (分) in ``*_fen`` columns: exact on SQLite and PostgreSQL alike (SQLite has
no decimal type and would store Numeric as a binary float). Timestamps are stored in UTC.
JSON columns hold amounts as strings, as the API does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Named constraints, so that migrations and models name them the same on every database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = sa.DateTime(timezone=True)
MAX_ID = 2**31 - 1  # ids are INTEGER (32-bit on PostgreSQL): larger ones cannot exist


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Round(SQLModel, table=True):
    """A funding round (评审批次) of one program; its overrides (第二十一条's tier amounts) are
    fixed when it is opened, so every application in it is evaluated with the same amounts."""

    __tablename__ = "rounds"

    id: int | None = Field(default=None, primary_key=True)
    program_id: str = Field(sa_type=sa.String(100), index=True)
    name: str = Field(sa_type=sa.String(200))
    overrides: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZ)
    # Closed once its funds are disbursed: never allocated again; its amounts keep counting.
    closed_at: datetime | None = Field(default=None, sa_type=TZ)
    closed_by: int | None = Field(default=None, foreign_key="api_keys.id")


class Application(SQLModel, table=True):
    """An application as submitted. Never rewritten: reviews and evaluations are recorded
    beside it (evaluations in their own append-only table)."""

    __tablename__ = "applications"
    __table_args__ = (
        # 表注4: one application per organisation per guide year. ``once_key`` is set on the
        # first application of an applicant in a guide year only, so the database itself
        # refuses a concurrent second "first".
        sa.UniqueConstraint("once_key", "applicant_uscc"),
        # Idempotency keys are each API key's own: two portals may pick the same one.
        sa.UniqueConstraint("submitted_by", "idempotency_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    program_id: str = Field(sa_type=sa.String(100), index=True)
    round_id: int | None = Field(default=None, foreign_key="rounds.id", index=True)
    applicant_uscc: str = Field(sa_type=sa.String(18), index=True)
    request: dict[str, Any] = Field(sa_type=sa.JSON)  # the application body as submitted
    request_hash: str = Field(sa_type=sa.String(64))  # sha256 of the whole submission
    idempotency_key: str | None = Field(default=None, sa_type=sa.String(255))
    # The API key that submitted it (None: stored before keys existed).
    submitted_by: int | None = Field(default=None, foreign_key="api_keys.id", index=True)
    once_key: str | None = Field(default=None, sa_type=sa.String(100))
    submitted_at: datetime = Field(sa_type=TZ)  # the application's own submitted_at
    received_at: datetime = Field(default_factory=utcnow, sa_type=TZ)
    # portal: sent by a portal, received_at is the server's clock; paper: a paper application
    # entered by a reviewer (代录), received_at is the date the bureau received it on paper.
    channel: str = Field(default="portal", sa_type=sa.String(10))
    entered_at: datetime | None = Field(default=None, sa_type=TZ)  # server clock (paper entries)


class Evaluation(SQLModel, table=True):
    """One evaluation of an application under one rules version. Append-only: re-evaluating
    under newer rules adds a row and never overwrites the decision that was made."""

    __tablename__ = "evaluations"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="applications.id", index=True)
    rules_version: str = Field(sa_type=sa.String(64))
    eligible: bool
    award_fen: int | None = Field(default=None, sa_type=sa.BigInteger)  # None: set per round
    reasons: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    result: dict[str, Any] = Field(sa_type=sa.JSON)  # the full calculate response
    # Eligible on the application's own merits, before the claims ledger and 一次性 (None: an
    # evaluation stored before the ledger, same as ``eligible``).
    eligible_on_own: bool | None = Field(default=None)
    evaluated_at: datetime = Field(default_factory=utcnow, sa_type=TZ)


class Allocation(SQLModel, table=True):
    """One run of a round's allocation. Runs are numbered per round; the highest is current."""

    __tablename__ = "allocations"
    __table_args__ = (sa.UniqueConstraint("round_id", "run"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="rounds.id", index=True)
    run: int
    pool_fen: int | None = Field(default=None, sa_type=sa.BigInteger)  # None: no program pool
    available_fen: int | None = Field(default=None, sa_type=sa.BigInteger)
    total_fen: int = Field(sa_type=sa.BigInteger)
    warnings: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    allocated_at: datetime = Field(default_factory=utcnow, sa_type=TZ)


class AllocationLine(SQLModel, table=True):
    """What one application receives in one allocation run, and the entitlement it came from."""

    __tablename__ = "allocation_lines"
    __table_args__ = (sa.UniqueConstraint("allocation_id", "application_id"),)

    id: int | None = Field(default=None, primary_key=True)
    allocation_id: int = Field(foreign_key="allocations.id", index=True)
    application_id: int = Field(foreign_key="applications.id", index=True)
    evaluation_id: int = Field(foreign_key="evaluations.id")
    entitlement_fen: int = Field(sa_type=sa.BigInteger)
    amount_fen: int = Field(sa_type=sa.BigInteger)
    # The claimed items (ledger keys, one per line) this line pays: each is paid once across the
    # program. Plain text, not JSON: a round's lines are read in 10,000s.
    items: str = Field(default="", sa_type=sa.Text)


class Disqualification(SQLModel, table=True):
    """第二十六条: an organisation disqualified from all of the bureau's programs for fraud.
    Entries are never deleted: removal records who removed it, when and why."""

    __tablename__ = "disqualifications"
    __table_args__ = (
        # At most one active entry per organisation.
        sa.Index(
            "uq_disqualifications_active_uscc",
            "uscc",
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    uscc: str = Field(sa_type=sa.String(18), index=True)
    reason: str = Field(sa_type=sa.Text)
    decided_on: date  # the date of the decision that disqualified it
    added_by: str = Field(sa_type=sa.String(200))
    added_at: datetime = Field(default_factory=utcnow, sa_type=TZ)
    removed_at: datetime | None = Field(default=None, sa_type=TZ)
    removed_by: str | None = Field(default=None, sa_type=sa.String(200))
    removal_reason: str | None = Field(default=None, sa_type=sa.Text)


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored (keys are 256-bit random, so a slow hash adds
    nothing); the key itself is shown once, when it is created. Revoked keys stay, as the
    record of who could do what and when."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(sa_type=sa.String(64), unique=True)  # hex sha256 of the whole key
    prefix: str = Field(sa_type=sa.String(16))  # the key's first characters, to recognise it
    name: str = Field(sa_type=sa.String(200))
    role: str = Field(sa_type=sa.String(20))  # portal | reviewer | auditor | admin
    # portal keys: the USCCs of the applicants the portal acts for (["*"]: every applicant)
    applicants: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_by: str = Field(sa_type=sa.String(200))
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZ)
    revoked_at: datetime | None = Field(default=None, sa_type=TZ)
    revoked_by: str | None = Field(default=None, sa_type=sa.String(200))


class StageReport(SQLModel, table=True):
    """A project's mid-term or acceptance report (中期 / 验收), as submitted, with its evaluation
    against the program's targets and the rules version that produced it. Append-only: a
    corrected report is a new row, and the disagreement with the earlier one is a warning."""

    __tablename__ = "stage_reports"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="applications.id", index=True)
    stage: str = Field(sa_type=sa.String(20))  # mid_term | acceptance
    reported: dict[str, Any] = Field(sa_type=sa.JSON)  # target id -> figure, as submitted
    task_book: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    reported_on: date | None = Field(default=None)
    period_ends_on: date | None = Field(default=None)
    rules_version: str = Field(sa_type=sa.String(64))
    passed: bool | None = Field(default=None)  # None: unjudged
    result: dict[str, Any] = Field(sa_type=sa.JSON)  # the evaluation, as the API returns it
    submitted_by: int | None = Field(default=None, foreign_key="api_keys.id")
    received_at: datetime = Field(default_factory=utcnow, sa_type=TZ)


class Approval(SQLModel, table=True):
    """The reviewers' decisions on an application, appended (approve, withdraw, with a note);
    the latest stands. Who decided is the authenticated key, never the request body."""

    __tablename__ = "approvals"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="applications.id", index=True)
    approved: bool
    note: str | None = Field(default=None, sa_type=sa.Text)
    by_key: int | None = Field(default=None, foreign_key="api_keys.id")  # None: before keys
    by_name: str = Field(sa_type=sa.String(200))
    received_at: datetime = Field(default_factory=utcnow, sa_type=TZ)


class ClaimRow(SQLModel, table=True):
    """The claims ledger: every item a stored application claims (a patent for 第十九条, a loan
    for 第二十条, a contract for 第二十二条), keyed as its rule file's ``claim_key`` says. An item
    is paid once across the program: see service.ledger."""

    __tablename__ = "claims"
    __table_args__ = (
        sa.Index("ix_claims_program_id_item_key", "program_id", "item_key"),
        sa.UniqueConstraint("application_id", "item_list", "item_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    program_id: str = Field(sa_type=sa.String(100))
    item_list: str = Field(sa_type=sa.String(50))  # transactions | loans | contracts
    item_index: int
    item_key: str = Field(sa_type=sa.String(300))
    application_id: int = Field(foreign_key="applications.id", index=True)
    applicant_uscc: str = Field(sa_type=sa.String(18))
    received_at: datetime = Field(sa_type=TZ)  # the application's
    # The item meets its own conditions (and is not a duplicate inside its application).
    meets_conditions: bool
    counted: bool  # counted in the application's latest evaluation (after the ledger)


class AuditEntry(SQLModel, table=True):
    """The audit log: every change to applications, approvals, rounds, allocations, the
    第二十六条 list and API keys, appended; each row holds the previous row's hash (see
    service.auditlog), so a rewritten row breaks the chain."""

    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=TZ)
    actor_key: int | None = Field(default=None)
    actor_name: str = Field(sa_type=sa.String(200))
    action: str = Field(sa_type=sa.String(50))
    entity: str = Field(sa_type=sa.String(50))
    entity_id: str = Field(sa_type=sa.String(50))
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(sa_type=sa.String(64))
    hash: str = Field(sa_type=sa.String(64))

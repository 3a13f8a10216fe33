"""Initial schema: rounds, applications, evaluations, allocations, the 第二十六条 list.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
ACTIVE = sa.text("removed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rounds")),
    )
    op.create_index(op.f("ix_rounds_program_id"), "rounds", ["program_id"])

    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("applicant_uscc", sa.String(length=18), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("once_key", sa.String(length=100), nullable=True),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_applications_round_id_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_applications_idempotency_key")),
        sa.UniqueConstraint(
            "once_key", "applicant_uscc", name=op.f("uq_applications_once_key_applicant_uscc")
        ),
    )
    op.create_index(op.f("ix_applications_applicant_uscc"), "applications", ["applicant_uscc"])
    op.create_index(op.f("ix_applications_program_id"), "applications", ["program_id"])
    op.create_index(op.f("ix_applications_round_id"), "applications", ["round_id"])

    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("rules_version", sa.String(length=64), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("award_fen", sa.BigInteger(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("evaluated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_evaluations_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(op.f("ix_evaluations_application_id"), "evaluations", ["application_id"])

    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("pool_fen", sa.BigInteger(), nullable=True),
        sa.Column("available_fen", sa.BigInteger(), nullable=True),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("allocated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_allocations_round_id_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
        sa.UniqueConstraint("round_id", "run", name=op.f("uq_allocations_round_id_run")),
    )
    op.create_index(op.f("ix_allocations_round_id"), "allocations", ["round_id"])

    op.create_table(
        "allocation_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("entitlement_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["allocations.id"],
            name=op.f("fk_allocation_lines_allocation_id_allocations"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_allocation_lines_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_allocation_lines_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_lines")),
        sa.UniqueConstraint(
            "allocation_id",
            "application_id",
            name=op.f("uq_allocation_lines_allocation_id_application_id"),
        ),
    )
    op.create_index(
        op.f("ix_allocation_lines_allocation_id"), "allocation_lines", ["allocation_id"]
    )
    op.create_index(
        op.f("ix_allocation_lines_application_id"), "allocation_lines", ["application_id"]
    )

    op.create_table(
        "disqualifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", TZ, nullable=False),
        sa.Column("removed_at", TZ, nullable=True),
        sa.Column("removed_by", sa.String(length=200), nullable=True),
        sa.Column("removal_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disqualifications")),
    )
    op.create_index(op.f("ix_disqualifications_uscc"), "disqualifications", ["uscc"])
    # At most one active entry per organisation (removed entries stay, as the record).
    op.create_index(
        "uq_disqualifications_active_uscc",
        "disqualifications",
        ["uscc"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in (
        "disqualifications",
        "allocation_lines",
        "allocations",
        "evaluations",
        "applications",
        "rounds",
    ):
        op.drop_table(table)

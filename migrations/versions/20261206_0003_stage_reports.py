"""Stage reports: a project's mid-term and acceptance reports, append-only, each with its
evaluation against the program's targets and the rules version that produced it.

Revision ID: 0003_stage_reports
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_stage_reports"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stage_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reported", sa.JSON(), nullable=False),
        sa.Column("task_book", sa.JSON(), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=True),
        sa.Column("period_ends_on", sa.Date(), nullable=True),
        sa.Column("rules_version", sa.String(length=64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_stage_reports_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by"], ["api_keys.id"], name=op.f("fk_stage_reports_submitted_by_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_reports")),
    )
    op.create_index(op.f("ix_stage_reports_application_id"), "stage_reports", ["application_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_stage_reports_application_id"), table_name="stage_reports")
    op.drop_table("stage_reports")

"""Money is paid once: the claims ledger, the approval history (decisions are appended, the
reviewer's name comes from the key), the hash-chained audit log, closed rounds, paper entries
(代录) and what each allocation line pays.

Existing reviews become the first entry of each application's approval history.

Revision ID: 0004
Revises: 0003_stage_reports
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003_stage_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("by_key", sa.Integer(), nullable=True),
        sa.Column("by_name", sa.String(length=200), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_approvals_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["by_key"], ["api_keys.id"], name=op.f("fk_approvals_by_key_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index(op.f("ix_approvals_application_id"), "approvals", ["application_id"])
    op.execute(
        "INSERT INTO approvals (application_id, approved, note, by_key, by_name, received_at) "
        "SELECT id, approved, review_note, NULL, COALESCE(reviewed_by, ''), "
        "COALESCE(reviewed_at, received_at) FROM applications WHERE approved IS NOT NULL"
    )

    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("item_list", sa.String(length=50), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=300), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("applicant_uscc", sa.String(length=18), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("meets_conditions", sa.Boolean(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_claims_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claims")),
        sa.UniqueConstraint(
            "application_id",
            "item_list",
            "item_index",
            name=op.f("uq_claims_application_id_item_list_item_index"),
        ),
    )
    op.create_index(op.f("ix_claims_application_id"), "claims", ["application_id"])
    op.create_index("ix_claims_program_id_item_key", "claims", ["program_id", "item_key"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_key", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("entity", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=50), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )

    with op.batch_alter_table("applications") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=10), nullable=False, server_default="portal")
        )
        batch.add_column(sa.Column("entered_at", TZ, nullable=True))
        batch.drop_column("approved")
        batch.drop_column("reviewed_by")
        batch.drop_column("reviewed_at")
        batch.drop_column("review_note")
    with op.batch_alter_table("applications") as batch:
        batch.alter_column("channel", server_default=None)
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("eligible_on_own", sa.Boolean(), nullable=True))
    with op.batch_alter_table("allocation_lines") as batch:
        batch.add_column(sa.Column("items", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("allocation_lines") as batch:
        batch.alter_column("items", server_default=None)
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("closed_at", TZ, nullable=True))
        batch.add_column(sa.Column("closed_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_rounds_closed_by_api_keys"), "api_keys", ["closed_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_constraint(op.f("fk_rounds_closed_by_api_keys"), type_="foreignkey")
        batch.drop_column("closed_by")
        batch.drop_column("closed_at")
    with op.batch_alter_table("allocation_lines") as batch:
        batch.drop_column("items")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("eligible_on_own")
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("approved", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("reviewed_at", TZ, nullable=True))
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch.drop_column("entered_at")
        batch.drop_column("channel")
    # The latest decision of each application goes back into its columns.
    op.execute(
        "UPDATE applications SET approved = a.approved, reviewed_by = a.by_name, "
        "reviewed_at = a.received_at, review_note = a.note FROM approvals a "
        "WHERE a.application_id = applications.id AND a.id = "
        "(SELECT MAX(b.id) FROM approvals b WHERE b.application_id = applications.id)"
    )
    op.drop_table("audit_log")
    op.drop_index("ix_claims_program_id_item_key", table_name="claims")
    op.drop_index(op.f("ix_claims_application_id"), table_name="claims")
    op.drop_table("claims")
    op.drop_index(op.f("ix_approvals_application_id"), table_name="approvals")
    op.drop_table("approvals")

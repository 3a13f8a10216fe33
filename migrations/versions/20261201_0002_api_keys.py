"""API keys: hashed, with a role and (portal keys) the applicants they act for; applications
record the key that submitted them, and idempotency keys become each API key's own.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("applicants", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("submitted_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_applications_submitted_by_api_keys"), "api_keys", ["submitted_by"], ["id"]
        )
        batch.create_index(op.f("ix_applications_submitted_by"), ["submitted_by"])
        batch.drop_constraint(op.f("uq_applications_idempotency_key"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_applications_submitted_by_idempotency_key"),
            ["submitted_by", "idempotency_key"],
        )


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_constraint(
            op.f("uq_applications_submitted_by_idempotency_key"), type_="unique"
        )
        batch.create_unique_constraint(
            op.f("uq_applications_idempotency_key"), ["idempotency_key"]
        )
        batch.drop_index(op.f("ix_applications_submitted_by"))
        batch.drop_constraint(op.f("fk_applications_submitted_by_api_keys"), type_="foreignkey")
        batch.drop_column("submitted_by")
    op.drop_table("api_keys")

"""Seals: an Idempotency-Key on issued documents, so a retried issuing request issues one.

Revision ID: 0007_seal_idempotency
Revises: 0006_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_seal_idempotency"
down_revision = "0006_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite adds a unique constraint only by rebuilding the table.
    with op.batch_alter_table("issued_documents") as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_issued_documents_idempotency_key"), ["idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("issued_documents") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_issued_documents_idempotency_key"), type_="unique")
        batch_op.drop_column("request_fingerprint")
        batch_op.drop_column("idempotency_key")

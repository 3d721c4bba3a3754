"""Queue: printed hall codes' mini-program codes, drawn by WeChat once and kept.

Revision ID: 0008_hall_code_wxacodes
Revises: 0007_seal_idempotency
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_hall_code_wxacodes"
down_revision = "0007_seal_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hall_code_wxacodes",
        sa.Column(
            "hall_code_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("page", sa.String(length=128), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["hall_code_id"],
            ["hall_codes.id"],
            name=op.f("fk_hall_code_wxacodes_hall_code_id_hall_codes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "hall_code_id", "page", "width", name=op.f("pk_hall_code_wxacodes")
        ),
    )


def downgrade() -> None:
    op.drop_table("hall_code_wxacodes")

"""Hall displays: a per-screen token for the entrance screen instead of a clerk's login.

Revision ID: 0015_hall_displays
Revises: 0014_profile_fact_sources
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_hall_displays"
down_revision = "0014_profile_fact_sources"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hall_displays",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("hall_id", BIGINT, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by", BIGINT, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["hall_id"],
            ["halls.id"],
            name=op.f("fk_hall_displays_hall_id_halls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"],
            ["staff_accounts.id"],
            name=op.f("fk_hall_displays_issued_by_staff_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hall_displays")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_hall_displays_token_hash")),
    )
    with op.batch_alter_table("hall_displays", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hall_displays_hall_id"), ["hall_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hall_displays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hall_displays_hall_id"))
    op.drop_table("hall_displays")

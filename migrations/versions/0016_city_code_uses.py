"""红棉码 uses: the city's personal code, scanned at a window, is single use per action.

Revision ID: 0016_city_code_uses
Revises: 0015_hall_displays
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_city_code_uses"
down_revision = "0015_hall_displays"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "city_code_uses",
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("user_id", BIGINT, nullable=True),
        sa.Column("staff_id", BIGINT, nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_accounts.id"],
            name=op.f("fk_city_code_uses_staff_id_staff_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_city_code_uses_user_id_users")
        ),
        sa.PrimaryKeyConstraint("serial", "action", name=op.f("pk_city_code_uses")),
    )


def downgrade() -> None:
    op.drop_table("city_code_uses")

"""Staff console scan login: single-use QR challenges, and the WeChat account a staff member
links to confirm them.

Revision ID: 0024_console_scan_login
Revises: 0023_application_ratings
Create Date: 2026-12-04 03:21:03.248992
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0024_console_scan_login"
down_revision = "0023_application_ratings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum("login", "link", name="consolechallengepurpose", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_accounts.id"],
            name=op.f("fk_console_challenges_staff_id_staff_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_challenges")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_console_challenges_code_hash")),
    )
    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "wechat_user_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("wechat_linked_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_staff_accounts_wechat_user_id"), ["wechat_user_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_staff_accounts_wechat_user_id_users"),
            "users",
            ["wechat_user_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_staff_accounts_wechat_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_staff_accounts_wechat_user_id"), type_="unique")
        batch_op.drop_column("wechat_linked_at")
        batch_op.drop_column("wechat_user_id")

    op.drop_table("console_challenges")

"""Receiving accounts: how the holder was checked, and a freeze when the legal rep changes.

Accounts confirmed before this revision were checked by nothing: they are marked 'unchecked'
and frozen, so no 免申即享 payment goes out until the legal representative confirms them
again under the exact-name rule (or the bank's check).

Revision ID: 0013_receiving_account_checks
Revises: 0012_user_face_verification
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_receiving_account_checks"
down_revision = "0012_user_face_verification"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("policy_receiving_accounts") as batch_op:
        batch_op.add_column(
            sa.Column(
                "verified_by", sa.String(length=16), nullable=False, server_default="unchecked"
            )
        )
        batch_op.add_column(sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("frozen_reason", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE policy_receiving_accounts SET frozen_at = CURRENT_TIMESTAMP,"
        " frozen_reason = 'unchecked_holder'"
    )
    with op.batch_alter_table("policy_receiving_accounts") as batch_op:
        batch_op.alter_column("verified_by", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("policy_receiving_accounts") as batch_op:
        batch_op.drop_column("frozen_reason")
        batch_op.drop_column("frozen_at")
        batch_op.drop_column("verified_by")

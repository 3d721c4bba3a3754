"""容缺: the moment an application's missing non-key materials are promised by, and when the
applicant was reminded of it.

Revision ID: 0022_tolerance_deadlines
Revises: 0021_applicant_signatures
Create Date: 2026-12-03 23:47:11.914204
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_tolerance_deadlines"
down_revision = "0021_applicant_signatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supply_due", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("supply_reminded_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_applications_supply_due"), ["supply_due"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applications_supply_due"))
        batch_op.drop_column("supply_reminded_at")
        batch_op.drop_column("supply_due")

"""告知承诺 checks (核查) marked overdue by the periodic sweep when undecided past their day.

Revision ID: 0026_inspections_overdue
Revises: 0025_revoked_certificates_index
Create Date: 2026-12-04 10:12:09.444000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0026_inspections_overdue"
down_revision = "0025_revoked_certificates_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("overdue", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_column("overdue")

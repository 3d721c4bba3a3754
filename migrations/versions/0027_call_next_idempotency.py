"""Call-next honours an Idempotency-Key: the key is kept with the move it named, one call per
key at a window, so a balancer's or a terminal's resend answers the first call.

Revision ID: 0027_call_next_idempotency
Revises: 0026_inspections_overdue
Create Date: 2026-12-04 13:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0027_call_next_idempotency"
down_revision = "0026_inspections_overdue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "uq_ticket_transitions_window_key",
            ["window_id", "idempotency_key"],
            unique=True,
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_transitions", schema=None) as batch_op:
        batch_op.drop_index("uq_ticket_transitions_window_key")
        batch_op.drop_column("idempotency_key")

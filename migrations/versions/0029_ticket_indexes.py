"""Two fewer index entries per ticket: `ix_tickets_user_id` repeated the leading column of the
unique (user_id, idempotency_key), which answers every lookup by citizen as well; and
`ix_tickets_appointment_id` indexed every walk-in's NULL, so it now holds only the tickets an
appointment's check-in issued. Every take wrote both.

Revision ID: 0029_ticket_indexes
Revises: 0028_queue_counts
Create Date: 2026-12-06 03:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029_ticket_indexes"
down_revision = "0028_queue_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_user_id")
        batch_op.drop_index("ix_tickets_appointment_id")
        batch_op.create_index(
            "ix_tickets_appointment_id",
            ["appointment_id"],
            sqlite_where=sa.text("appointment_id IS NOT NULL"),
            postgresql_where=sa.text("appointment_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_appointment_id")
        batch_op.create_index("ix_tickets_appointment_id", ["appointment_id"])
        batch_op.create_index("ix_tickets_user_id", ["user_id"])

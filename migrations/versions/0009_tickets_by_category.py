"""Queue: tickets indexed by category, day and status.

Every take counts the people queued in its category and every position view counts those
ahead; without this index both scanned the tickets table (the existing queue index leads with
the hall), so a take slowed down as the day's tickets piled up.

Revision ID: 0009_tickets_by_category
Revises: 0008_hall_code_wxacodes
"""

from __future__ import annotations

from alembic import op

revision = "0009_tickets_by_category"
down_revision = "0008_hall_code_wxacodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tickets_category_day_status",
        "tickets",
        ["category_id", "service_day", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_category_day_status", table_name="tickets")

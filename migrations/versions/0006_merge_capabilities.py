"""Join the branches of the capabilities developed side by side (queueing, seals, policies).

Revision ID: 0006_merge
Revises: 0003_appointments, 0004_seals, 0005_policies
"""

from __future__ import annotations

revision = "0006_merge"
down_revision = ("0003_appointments", "0004_seals", "0005_policies")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""Users: when the person last passed a face verification (identity assurance levels).

Revision ID: 0012_user_face_verification
Revises: 0011_seal_templates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_user_face_verification"
down_revision = "0011_seal_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("face_verified_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("face_verified_at")

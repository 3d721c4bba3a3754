"""A partial index on revoked seal certificates: every signature counts them (the CRL's
version), and the table grows by one event certificate per applicant's signature.

Revision ID: 0025_revoked_certificates_index
Revises: 0024_console_scan_login
Create Date: 2026-12-04 10:09:08.606000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0025_revoked_certificates_index"
down_revision = "0024_console_scan_login"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("seal_certificates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seal_certificates_revoked",
            ["revoked_at"],
            unique=False,
            sqlite_where=sa.text("revoked_at IS NOT NULL"),
            postgresql_where=sa.text("revoked_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("seal_certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_seal_certificates_revoked")

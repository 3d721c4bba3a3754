"""Audit: keyed links. Each entry names how its link was computed and with which key.

Entries sealed before this revision keep their plain SHA-256 links and are marked 'sha256'
(still verifiable as they were; the first keyed link after them covers the last of them);
every entry sealed from now on is linked with HMAC-SHA256 under a key from the environment
('hmac-sha256', key id per entry). They are not re-chained: that would need the key here and
would bless whatever the table holds at migration time.

Revision ID: 0010_audit_keyed_links
Revises: 0009_tickets_by_category
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_audit_keyed_links"
down_revision = "0009_tickets_by_category"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries") as batch_op:
        batch_op.add_column(sa.Column("link_alg", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    op.execute("UPDATE audit_entries SET link_alg = 'sha256' WHERE seq IS NOT NULL")


def downgrade() -> None:
    # Keyed links cannot become plain ones: after a downgrade, `flask audit verify` of the old
    # code reports the first entry sealed under 0010 as broken.
    with op.batch_alter_table("audit_entries") as batch_op:
        batch_op.drop_column("key_id")
        batch_op.drop_column("link_alg")

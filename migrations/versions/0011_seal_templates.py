"""Seals: the document templates each seal may sign.

Until now a seal named only matter codes, and only the system actor was held to them. Every
use, by any actor, is now checked against templates and matters. Existing seals keep what they
could sign in practice: their matter codes were the template keys of the documents issued for
them, so those become their templates (a seal with no matters gets none until an admin grants
them).

Revision ID: 0011_seal_templates
Revises: 0010_audit_keyed_links
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0011_seal_templates"
down_revision = "0010_audit_keyed_links"
branch_labels = None
depends_on = None

# The template keys as of this revision (a migration must not import the app's current list).
KNOWN_TEMPLATES = {
    "meteorological_certificate",
    "outdoor_advertising_permit",
    "drainage_permit",
    "commitment_letter",
}


def upgrade() -> None:
    with op.batch_alter_table("seals") as batch_op:
        batch_op.add_column(
            sa.Column("authorised_templates", sa.JSON(), nullable=False, server_default="[]")
        )
    connection = op.get_bind()
    seals = sa.table(
        "seals",
        sa.column("id", sa.Integer),
        sa.column("authorised_matters", sa.JSON),
        sa.column("authorised_templates", sa.JSON),
    )
    for seal_id, matters in connection.execute(sa.select(seals.c.id, seals.c.authorised_matters)):
        if isinstance(matters, str):  # SQLite hands JSON back as text in some drivers
            matters = json.loads(matters)
        templates = sorted(set(matters or []) & KNOWN_TEMPLATES)
        connection.execute(
            seals.update().where(seals.c.id == seal_id).values(authorised_templates=templates)
        )
    with op.batch_alter_table("seals") as batch_op:
        batch_op.alter_column("authorised_templates", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("seals") as batch_op:
        batch_op.drop_column("authorised_templates")

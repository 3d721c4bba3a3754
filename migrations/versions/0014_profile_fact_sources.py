"""Enterprise profiles: where each fact came from, and which are self-declared, unconfirmed.

Existing profiles cannot tell which of their values the enterprise typed in: the change log
can. Every field and tag whose latest change came from the enterprise itself ('self') is
marked unverified, so it stops granting money-paying benefits until an officer confirms it.

Revision ID: 0014_profile_fact_sources
Revises: 0013_receiving_account_checks
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0014_profile_fact_sources"
down_revision = "0013_receiving_account_checks"
branch_labels = None
depends_on = None

# As of this revision (a migration must not import the app's current list).
FACT_BITS = {"industry_code": 1, "employees": 2, "revenue_yuan": 4, "size_class": 8}


def upgrade() -> None:
    with op.batch_alter_table("enterprise_profiles") as batch_op:
        batch_op.add_column(
            sa.Column("unverified_tag_bits", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("unverified_fields", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("fact_sources", sa.JSON(), nullable=False, server_default="{}")
        )
    connection = op.get_bind()
    changes = sa.table(
        "enterprise_profile_changes",
        sa.column("id", sa.Integer),
        sa.column("enterprise_id", sa.Integer),
        sa.column("source", sa.String),
        sa.column("changes", sa.JSON),
    )
    latest: dict[int, dict[str, str]] = {}
    rows = connection.execute(
        sa.select(changes.c.enterprise_id, changes.c.source, changes.c.changes).order_by(
            changes.c.id
        )
    )
    for enterprise_id, source, changed in rows:
        if isinstance(changed, str):
            changed = json.loads(changed)
        for field in changed or {}:
            latest.setdefault(enterprise_id, {})[field] = source
    profiles = sa.table(
        "enterprise_profiles",
        sa.column("enterprise_id", sa.Integer),
        sa.column("tag_bits", sa.Integer),
        sa.column("unverified_tag_bits", sa.Integer),
        sa.column("unverified_fields", sa.Integer),
    )
    for enterprise_id, sources in latest.items():
        fields = sum(bit for f, bit in FACT_BITS.items() if sources.get(f) == "self")
        if sources.get("tags") == "self":
            tag_bits = connection.scalar(
                sa.select(profiles.c.tag_bits).where(profiles.c.enterprise_id == enterprise_id)
            )
            tags = tag_bits or 0
        else:
            tags = 0
        if fields or tags:
            connection.execute(
                profiles.update()
                .where(profiles.c.enterprise_id == enterprise_id)
                .values(unverified_fields=fields, unverified_tag_bits=tags)
            )


def downgrade() -> None:
    with op.batch_alter_table("enterprise_profiles") as batch_op:
        batch_op.drop_column("fact_sources")
        batch_op.drop_column("unverified_fields")
        batch_op.drop_column("unverified_tag_bits")

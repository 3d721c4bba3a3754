"""Matter catalogue: matters and their immutable published versions (guide, form, licence).

Revision ID: 0017_matters
Revises: 0016_city_code_uses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_matters"
down_revision = "0016_city_code_uses"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "matters",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("department_id", BIGINT, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("applicant", sa.String(length=16), nullable=False),
        sa.Column("flags_text", sa.String(length=128), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_matters_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matters")),
        sa.UniqueConstraint("code", name=op.f("uq_matters_code")),
    )
    with op.batch_alter_table("matters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matters_department_id"), ["department_id"], unique=False
        )
    op.create_table(
        "matter_versions",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("matter_id", BIGINT, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("published_by", BIGINT, nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["matter_id"],
            ["matters.id"],
            name=op.f("fk_matter_versions_matter_id_matters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["published_by"],
            ["staff_accounts.id"],
            name=op.f("fk_matter_versions_published_by_staff_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matter_versions")),
        sa.UniqueConstraint(
            "matter_id", "version", name=op.f("uq_matter_versions_matter_id_version")
        ),
    )


def downgrade() -> None:
    op.drop_table("matter_versions")
    with op.batch_alter_table("matters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matters_department_id"))
    op.drop_table("matters")

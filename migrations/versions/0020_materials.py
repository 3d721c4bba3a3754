"""Application materials: uploaded files (by digest) or licences from the wallet (免证办).

Revision ID: 0020_materials
Revises: 0019_inspections
Create Date: 2026-12-03 17:36:58.215536
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_materials"
down_revision = "0019_inspections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_materials",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("material_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=128), nullable=True),
        sa.Column("content_type", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=128), nullable=True),
        sa.Column(
            "licence_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("added_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_application_materials_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_materials_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_application_materials_licence_id_licences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_materials")),
        sa.UniqueConstraint(
            "application_id",
            "material_id",
            name=op.f("uq_application_materials_application_id_material_id"),
        ),
    )
    with op.batch_alter_table("application_materials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_application_materials_application_id"), ["application_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("application_materials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_materials_application_id"))

    op.drop_table("application_materials")

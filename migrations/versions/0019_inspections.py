"""Post-approval inspections (核查) of permits granted on commitment; false commitments.

Revision ID: 0019_inspections
Revises: 0018_applications
Create Date: 2026-12-03 17:32:50.420585
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_inspections"
down_revision = "0018_applications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commitment_breaches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("excluded_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_commitment_breaches_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_commitment_breaches_enterprise_id_registry_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_commitment_breaches_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitment_breaches")),
    )
    with op.batch_alter_table("commitment_breaches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commitment_breaches_enterprise_id"), ["enterprise_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_commitment_breaches_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "inspections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rectify_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("closed_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_inspections_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"],
            ["staff_accounts.id"],
            name=op.f("fk_inspections_closed_by_staff_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_inspections_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("application_id", name=op.f("uq_inspections_application_id")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspections_queue", ["department_id", "status", "due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_queue")

    op.drop_table("inspections")
    with op.batch_alter_table("commitment_breaches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commitment_breaches_user_id"))
        batch_op.drop_index(batch_op.f("ix_commitment_breaches_enterprise_id"))

    op.drop_table("commitment_breaches")

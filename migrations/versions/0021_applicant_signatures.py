"""Applications keep what their applicant signed: the application form (and its fingerprint),
the commitment letter for 告知承诺 matters, and when.

Revision ID: 0021_applicant_signatures
Revises: 0020_materials
Create Date: 2026-12-03 23:33:40.125952
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_applicant_signatures"
down_revision = "0020_materials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "form_document_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "commitment_document_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("signed_form_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_applications_commitment_document_id_issued_documents"),
            "issued_documents",
            ["commitment_document_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_applications_form_document_id_issued_documents"),
            "issued_documents",
            ["form_document_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_applications_form_document_id_issued_documents"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_applications_commitment_document_id_issued_documents"),
            type_="foreignkey",
        )
        batch_op.drop_column("signed_at")
        batch_op.drop_column("signed_form_sha256")
        batch_op.drop_column("commitment_document_id")
        batch_op.drop_column("form_document_id")

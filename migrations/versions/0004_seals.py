"""Electronic seals: keys, certificates, seals, issued documents, seal uses.

Revision ID: 0004_seals
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_seals"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("(CURRENT_TIMESTAMP)")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "seal_keys",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_keys")),
        sa.UniqueConstraint("ref", name=op.f("uq_seal_keys_ref")),
    )
    op.create_table(
        "seal_certificates",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("serial_hex", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("key_id", BIGINT, nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["seal_keys.id"], name=op.f("fk_seal_certificates_key_id_seal_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_certificates")),
        sa.UniqueConstraint("serial_hex", name=op.f("uq_seal_certificates_serial_hex")),
    )
    op.create_table(
        "seals",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("department_id", BIGINT, nullable=False),
        sa.Column("kind", _enum("sealkind", "official", "approval", "business"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("status", _enum("sealstatus", "active", "suspended", "revoked"), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", BIGINT, nullable=False),
        sa.Column("certificate_id", BIGINT, nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.Column("authorised_roles", sa.JSON(), nullable=False),
        sa.Column("authorised_matters", sa.JSON(), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["seal_certificates.id"],
            name=op.f("fk_seals_certificate_id_seal_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_seals_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["seal_keys.id"], name=op.f("fk_seals_key_id_seal_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seals")),
        sa.UniqueConstraint("code", name=op.f("uq_seals_code")),
    )
    op.create_index(op.f("ix_seals_department_id"), "seals", ["department_id"], unique=False)
    op.create_table(
        "issued_documents",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("public_id", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("seal_id", BIGINT, nullable=False),
        sa.Column("holder_masked", sa.String(length=128), nullable=False),
        sa.Column("holder_user_id", BIGINT, nullable=True),
        sa.Column("matter", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", BIGINT, nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("personal_signature", sa.Boolean(), nullable=False),
        sa.Column(
            "status", _enum("documentstatus", "valid", "revoked", "superseded"), nullable=False
        ),
        sa.Column("superseded_by_id", BIGINT, nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by_kind", sa.String(length=16), nullable=False),
        sa.Column("issued_by_id", BIGINT, nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_reason", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["holder_user_id"], ["users.id"], name=op.f("fk_issued_documents_holder_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["seal_id"], ["seals.id"], name=op.f("fk_issued_documents_seal_id_seals")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"],
            ["issued_documents.id"],
            name=op.f("fk_issued_documents_superseded_by_id_issued_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_documents")),
        sa.UniqueConstraint("public_id", name=op.f("uq_issued_documents_public_id")),
    )
    op.create_index(
        op.f("ix_issued_documents_holder_user_id"),
        "issued_documents",
        ["holder_user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_issued_documents_seal_id"), "issued_documents", ["seal_id"], unique=False
    )
    op.create_index(
        op.f("ix_issued_documents_sha256"), "issued_documents", ["sha256"], unique=False
    )
    op.create_table(
        "seal_uses",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("seal_id", BIGINT, nullable=False),
        sa.Column("document_id", BIGINT, nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", BIGINT, nullable=True),
        sa.Column("document_sha256", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["issued_documents.id"],
            name=op.f("fk_seal_uses_document_id_issued_documents"),
        ),
        sa.ForeignKeyConstraint(["seal_id"], ["seals.id"], name=op.f("fk_seal_uses_seal_id_seals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_uses")),
    )
    op.create_index(op.f("ix_seal_uses_seal_id"), "seal_uses", ["seal_id"], unique=False)


def downgrade() -> None:
    op.drop_table("seal_uses")
    op.drop_table("issued_documents")
    op.drop_table("seals")
    op.drop_table("seal_certificates")
    op.drop_table("seal_keys")

"""Seals, their keys and certificates, issued documents and every use of a seal."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, created_at, intpk, str32, str64, str128, str_enum


class SealKind(enum.StrEnum):
    OFFICIAL = "official"  # 公章
    APPROVAL = "approval"  # 审批专用章
    BUSINESS = "business"  # 业务专用章

    @property
    def label(self) -> str:
        return {"official": "公章", "approval": "审批专用章", "business": "业务专用章"}[self.value]


class SealStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class DocumentStatus(enum.StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


class SealKey(Base):
    """A key's metadata; software keys carry their envelope (useless without the master key)."""

    __tablename__ = "seal_keys"

    id: Mapped[intpk]
    provider: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str128] = mapped_column(unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_key_pem: Mapped[str] = mapped_column(Text)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[created_at]


class SealCertificate(Base):
    """A certificate issued by our issuing CA: a seal's, or a person's for one signing event."""

    __tablename__ = "seal_certificates"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(16))  # seal | event
    serial_hex: Mapped[str64] = mapped_column(unique=True)
    subject: Mapped[str] = mapped_column(String(255))
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    pem: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("seal_keys.id"))
    revoked_at: Mapped[dt.datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[created_at]

    __table_args__ = (
        # Every signature counts the revoked certificates (the CRL's version), and every
        # applicant's signature adds an event certificate: without this the count reads the
        # whole table, which grows by one row per signing event.
        Index(
            "ix_seal_certificates_revoked",
            "revoked_at",
            sqlite_where=text("revoked_at IS NOT NULL"),
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
    )


class Seal(Base):
    """A department's electronic seal: image, key, certificate, validity, status, who may use it."""

    __tablename__ = "seals"

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    kind: Mapped[SealKind] = mapped_column(str_enum(SealKind))
    name: Mapped[str128]
    purpose: Mapped[str32]
    status: Mapped[SealStatus] = mapped_column(str_enum(SealStatus))
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    key_id: Mapped[int] = mapped_column(ForeignKey("seal_keys.id"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("seal_certificates.id"))
    image_png: Mapped[bytes] = mapped_column(LargeBinary)
    # Staff roles (e.g. "reviewer": scoped to the seal's department) that may apply this seal,
    # and what it may sign, whoever applies it: document templates and matter codes.
    authorised_roles: Mapped[list[str]] = mapped_column(JSON)
    authorised_templates: Mapped[list[str]] = mapped_column(JSON)
    authorised_matters: Mapped[list[str]] = mapped_column(JSON)
    status_changed_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]

    key: Mapped[SealKey] = relationship()
    certificate: Mapped[SealCertificate] = relationship()


class IssuedDocument(Base):
    """The registry of every document issued under a seal."""

    __tablename__ = "issued_documents"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    template: Mapped[str32]
    title: Mapped[str128]
    number: Mapped[str64]
    seal_id: Mapped[int] = mapped_column(ForeignKey("seals.id"), index=True)
    holder_masked: Mapped[str128]
    holder_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    matter: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str64] = mapped_column(index=True)
    size_bytes: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(255))
    personal_signature: Mapped[bool]
    status: Mapped[DocumentStatus] = mapped_column(str_enum(DocumentStatus))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("issued_documents.id"))
    issued_at: Mapped[dt.datetime]
    issued_by_kind: Mapped[str] = mapped_column(String(16))
    issued_by_id: Mapped[int | None]
    status_changed_at: Mapped[dt.datetime | None]
    status_reason: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # public, non-personal facts only
    # A retried issuing request (Idempotency-Key) returns this document instead of a second
    # one: the client's key scoped to the issuing actor ("staff:12:<key>"), unique, and a keyed
    # hash of the request, so the same key with different content is refused.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]

    seal: Mapped[Seal] = relationship()

    def effective_status(self) -> str:
        """valid | revoked | superseded: the document's own status, and revoked once its
        seal is (a leaked key voids everything it signed)."""
        if self.status != DocumentStatus.VALID:
            return self.status.value
        if self.seal.status == SealStatus.REVOKED:
            return "revoked"
        return "valid"


class SealUse(Base):
    """One attempt to apply a seal: who, which document (hash), when, and whether it was allowed."""

    __tablename__ = "seal_uses"

    id: Mapped[intpk]
    seal_id: Mapped[int] = mapped_column(ForeignKey("seals.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("issued_documents.id"))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # signed | refused
    reason: Mapped[str | None] = mapped_column(String(64))
    used_at: Mapped[dt.datetime]

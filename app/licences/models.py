"""Electronic licences (电子证照): what a holder's wallet lists and a counter verifies."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, created_at, intpk, str64, str128
from app.seals.models import IssuedDocument


class LicenceStatus(enum.StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


class Licence(Base):
    __tablename__ = "licences"

    id: Mapped[intpk]
    number: Mapped[str] = mapped_column(String(48), unique=True)  # the sealed document's number
    template: Mapped[str64]  # the licence type: the document template it was issued with
    title: Mapped[str128]
    matter_code: Mapped[str64]
    holder_kind: Mapped[str] = mapped_column(String(16))  # person | enterprise
    holder_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    holder_enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("registry_enterprises.id"), index=True
    )
    holder_masked: Mapped[str128]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(String(200))
    document_id: Mapped[int] = mapped_column(ForeignKey("issued_documents.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), unique=True)
    created_at: Mapped[created_at]

    # The sealed document, read with the licence: its state depends on it.
    document: Mapped[IssuedDocument] = relationship(lazy="joined", innerjoin=True)

    def state(self, now: dt.datetime) -> str:
        """valid | expired | revoked, at `now`. Revoked too once the seal registry revoked or
        superseded its document, or revoked the seal that signed it: the wallet, the counter
        and a reuse as material all read this one answer."""
        if self.status == LicenceStatus.REVOKED or self.document.effective_status() != "valid":
            return "revoked"
        if self.valid_until is not None and now >= self.valid_until:
            return "expired"
        return "valid"

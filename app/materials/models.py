"""The materials attached to an application: an uploaded file, or a licence from the wallet."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, intpk


class ApplicationMaterial(Base):
    __tablename__ = "application_materials"
    __table_args__ = (UniqueConstraint("application_id", "material_id"),)

    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    material_id: Mapped[str] = mapped_column(String(32))  # the matter guide's material id
    source: Mapped[str] = mapped_column(String(16))  # upload | licence (免证办)
    filename: Mapped[str | None] = mapped_column(String(128))
    content_type: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(128))
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"))
    added_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

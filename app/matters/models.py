"""The matter catalogue: one row per matter, one immutable row per published version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, created_at, intpk, str64, str128


class Matter(Base):
    """A matter as the catalogue lists it; what it asks and does is in its current version."""

    __tablename__ = "matters"

    id: Mapped[intpk]
    code: Mapped[str64] = mapped_column(unique=True)  # the matter's catalogue code
    name: Mapped[str128]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # 行政许可, 公共服务, ...
    applicant: Mapped[str] = mapped_column(String(16))  # citizen | enterprise | both
    # ",秒批,零跑动," so that one LIKE finds a flag on every database.
    flags_text: Mapped[str] = mapped_column(String(128), default=",")
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    @property
    def flags(self) -> list[str]:
        return [flag for flag in self.flags_text.split(",") if flag]


class MatterVersion(Base):
    """One published version of a matter, never changed: an application keeps the version it
    was filed under, so its form, rules and licence stay those the applicant saw."""

    __tablename__ = "matter_versions"
    __table_args__ = (UniqueConstraint("matter_id", "version"),)

    id: Mapped[intpk]
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    # Who published it: a staff account, or None for the catalogue files (`flask matters load`).
    published_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MatterParameter(Base):
    """A rule threshold or list as staff set it (the matter file's value is the default).
    Kept apart from the versions: changing a limit does not change the rules."""

    __tablename__ = "matter_parameters"
    __table_args__ = (UniqueConstraint("matter_id", "name"),)

    id: Mapped[intpk]
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

"""Hall details, opening hours, service categories and windows.

`Hall` itself (code, name, kind, town) lives in `app.organisation`; everything the queue needs
to know about a hall hangs off it here, so the organisation catalogue stays minimal.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, created_at, intpk, str64, str255, str_enum
from app.organisation.models import Hall


class HallProfile(Base):
    """The 1:1 details of a hall: where it is and how its calendar works."""

    __tablename__ = "hall_profiles"

    hall_id: Mapped[int] = mapped_column(
        ForeignKey("halls.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str255] = mapped_column(default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(32))
    # Public holidays close the hall unless it says otherwise (some centres open on weekends).
    open_on_public_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    # A make-up workday (调休上班) on a weekend uses the hours of this weekday (0 = Monday).
    makeup_workday_weekday: Mapped[int] = mapped_column(Integer, default=0)
    # Number of places a late returning no-show is put back (过号顺延); None: the setting.
    late_return_places: Mapped[int | None] = mapped_column(Integer)
    # Recalls after which a called ticket may be marked no-show; None: the setting.
    max_recalls: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[created_at]

    hall: Mapped[Hall] = relationship()


class OpeningHours(Base):
    """One opening interval of a hall on a weekday (two rows for a lunch break)."""

    __tablename__ = "hall_opening_hours"
    __table_args__ = (
        UniqueConstraint("hall_id", "weekday", "opens_at"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        CheckConstraint("opens_at < closes_at", name="interval_order"),
    )

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday, as date.weekday()
    opens_at: Mapped[dt.time] = mapped_column(Time)
    closes_at: Mapped[dt.time] = mapped_column(Time)


class SpecialDay(Base):
    """A date whose hours differ from the calendar's rule: closed, or open with given hours."""

    __tablename__ = "hall_special_days"
    __table_args__ = (UniqueConstraint("hall_id", "day"),)

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    closed: Mapped[bool] = mapped_column(Boolean, default=True)
    opens_at: Mapped[dt.time | None] = mapped_column(Time)
    closes_at: Mapped[dt.time | None] = mapped_column(Time)
    note: Mapped[str | None] = mapped_column(String(128))


class ServiceCategory(Base):
    """A kind of business a hall queues for, with its ticket prefix letter (A, B, ...)."""

    __tablename__ = "service_categories"
    __table_args__ = (
        UniqueConstraint("hall_id", "prefix"),
        UniqueConstraint("hall_id", "name"),
        CheckConstraint("daily_cap > 0", name="daily_cap_positive"),
        CheckConstraint("typical_minutes > 0", name="typical_minutes_positive"),
    )

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"), index=True)
    name: Mapped[str64]
    prefix: Mapped[str] = mapped_column(String(1))
    daily_cap: Mapped[int] = mapped_column(Integer, default=300)
    typical_minutes: Mapped[float] = mapped_column(Float, default=10.0)
    # Names (or codes) of the matters (事项) this category covers.
    matters: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_at]


class WindowStatus(enum.StrEnum):
    OPEN = "open"
    PAUSED = "paused"  # staffed, not calling (break)
    CLOSED = "closed"


class Window(Base):
    """A counter (窗口) in a hall, serving some categories, with the clerk on duty."""

    __tablename__ = "windows"
    __table_args__ = (UniqueConstraint("hall_id", "number"),)

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[WindowStatus] = mapped_column(
        str_enum(WindowStatus), default=WindowStatus.CLOSED
    )
    clerk_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    status_changed_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]

    categories: Mapped[list[ServiceCategory]] = relationship(
        secondary="window_categories", order_by="ServiceCategory.prefix", lazy="selectin"
    )


class WindowCategory(Base):
    """Which categories a window serves."""

    __tablename__ = "window_categories"

    window_id: Mapped[int] = mapped_column(
        ForeignKey("windows.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[int] = mapped_column(
        ForeignKey("service_categories.id", ondelete="CASCADE"), primary_key=True, index=True
    )

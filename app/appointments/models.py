"""Appointment slots, appointments and the booking suspensions earned by missing them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, created_at, intpk, str_enum


class AppointmentSlot(Base):
    """A bookable time slot of one category in one hall, with its capacity and booked count.

    `booked` is a counter maintained by guarded UPDATEs (`booked < capacity`), so concurrent
    bookings never overfill a slot; the check constraint is the last guard.
    """

    __tablename__ = "appointment_slots"
    __table_args__ = (
        UniqueConstraint("category_id", "starts_at"),
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        CheckConstraint("starts_at < ends_at", name="interval_order"),
        Index("ix_appointment_slots_hall_day", "hall_id", "day"),
    )

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(
        ForeignKey("service_categories.id", ondelete="CASCADE")
    )
    day: Mapped[dt.date] = mapped_column(Date)  # local (Asia/Shanghai) date of the slot
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_at]

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - self.booked)


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    CHECKED_IN = "checked_in"  # turned into a priority ticket
    MISSED = "missed"  # not checked in by the end of the check-in window


class Appointment(Base):
    """A citizen's booking of one slot; hall, category, day and start are copied from the slot
    so that the one-per-category-per-day rule is a unique index and sweeps need no join."""

    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        # One live appointment per citizen, category and day; a cancelled one frees the day.
        Index(
            "uq_appointments_one_per_day",
            "user_id",
            "category_id",
            "day",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        Index("ix_appointments_status_starts_at", "status", "starts_at"),
        Index("ix_appointments_user_id_starts_at", "user_id", "starts_at"),
    )

    id: Mapped[intpk]
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("service_categories.id"))
    day: Mapped[dt.date] = mapped_column(Date)
    starts_at: Mapped[dt.datetime]
    status: Mapped[AppointmentStatus] = mapped_column(
        str_enum(AppointmentStatus), default=AppointmentStatus.BOOKED
    )
    # The phone's Idempotency-Key of the booking request: a retried request gets this row back.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    booked_at: Mapped[dt.datetime]
    cancelled_at: Mapped[dt.datetime | None]
    checked_in_at: Mapped[dt.datetime | None]
    # How the citizen checked in: "hall_code" (phone scan) or "personal_code" (terminal).
    checked_in_via: Mapped[str | None] = mapped_column(String(16))
    missed_at: Mapped[dt.datetime | None]

    slot: Mapped[AppointmentSlot] = relationship()


class BookingSuspension(Base):
    """Booking refused to a citizen until `ends_at`, after too many missed appointments.

    One per triggering miss (unique), so two sweeps running at once cannot suspend twice.
    """

    __tablename__ = "booking_suspensions"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    trigger_appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), unique=True)
    misses: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    created_at: Mapped[created_at]

"""Appointment services: open slots, book, cancel, check in, and sweep missed appointments.

Capacity is a counter on the slot, raised by one guarded UPDATE (`booked < capacity`): on
PostgreSQL the row lock makes concurrent bookings of one slot take turns and re-check the
guard, on SQLite writers are serialised anyway; the check constraint is the last guard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.appointments import errors, notices
from app.appointments.models import (
    Appointment,
    AppointmentSlot,
    AppointmentStatus,
    BookingSuspension,
)
from app.appointments.rules import AppointmentRules
from app.audit.service import Actor
from app.audit.service import record as audit
from app.calendar import local_day, local_instant, working_days
from app.db import affected_rows, insert_on_conflict
from app.halls.models import ServiceCategory
from app.halls.service import hours_on
from app.identity.models import User

# --- bookable days and slots ---------------------------------------------------------------


def bookable_hours(
    session: Session, hall_id: int, *, rules: AppointmentRules, now: dt.datetime
) -> dict[dt.date, list[tuple[dt.time, dt.time]]]:
    """The next `days_ahead` working days (today included) on which the hall opens, each
    with its opening intervals (read once: listing and booking check slots against them)."""
    days: dict[dt.date, list[tuple[dt.time, dt.time]]] = {}
    horizon = local_day(now) + dt.timedelta(days=rules.days_ahead * 3 + 14)
    for day in working_days(local_day(now)):
        if len(days) >= rules.days_ahead or day > horizon:
            break
        intervals = hours_on(session, hall_id, day)
        if intervals:
            days[day] = intervals
    return days


def _within_hours(
    intervals: Sequence[tuple[dt.time, dt.time]],
    day: dt.date,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
) -> bool:
    """Whether a slot of `day` lies inside one of the hall's opening intervals of that day.

    Slots are made from the hours at the time (`open_slots`); when a manager closes the day
    or shortens it, the slots outside stay in the table (with their counters, for a day that
    opens again) and this rule stops offering them."""
    return any(
        local_instant(day, opens) <= starts_at and ends_at <= local_instant(day, closes)
        for opens, closes in intervals
    )


def _slot_starts(
    intervals: Sequence[tuple[dt.time, dt.time]], day: dt.date, minutes: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    length = dt.timedelta(minutes=minutes)
    slots = []
    for opens, closes in intervals:
        start, end = local_instant(day, opens), local_instant(day, closes)
        while start + length <= end:
            slots.append((start, start + length))
            start += length
    return slots


def open_slots(session: Session, hall_id: int, *, rules: AppointmentRules, now: dt.datetime) -> int:
    """Create the missing slots of every active category of the hall on its bookable days.

    Idempotent and race-safe (INSERT ... ON CONFLICT DO NOTHING on category and start);
    existing slots, their capacity and bookings are left alone. Returns how many were created.
    """
    categories = session.scalars(
        select(ServiceCategory.id).where(
            ServiceCategory.hall_id == hall_id, ServiceCategory.active.is_(True)
        )
    ).all()
    rows: list[dict[str, Any]] = []
    for day, intervals in bookable_hours(session, hall_id, rules=rules, now=now).items():
        for starts_at, ends_at in _slot_starts(intervals, day, rules.slot_minutes):
            if starts_at <= now:
                continue
            rows.extend(
                {
                    "hall_id": hall_id,
                    "category_id": category_id,
                    "day": day,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "capacity": rules.slot_capacity,
                    "booked": 0,
                    "created_at": now,
                }
                for category_id in categories
            )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = insert_on_conflict(dialect)
    created = 0
    for chunk_start in range(0, len(rows), 500):
        statement = (
            insert(AppointmentSlot)
            .values(rows[chunk_start : chunk_start + 500])
            .on_conflict_do_nothing(index_elements=["category_id", "starts_at"])
            .returning(AppointmentSlot.id)
        )
        created += len(session.execute(statement).all())
    return created


def list_slots(
    session: Session,
    hall_id: int,
    *,
    category_id: int | None,
    day: dt.date | None,
    rules: AppointmentRules,
    now: dt.datetime,
) -> list[AppointmentSlot]:
    """The hall's future slots on its bookable days, by start (full ones included)."""
    hours = bookable_hours(session, hall_id, rules=rules, now=now)
    days = [d for d in hours if day is None or d == day]
    if not days:
        return []
    query = (
        select(AppointmentSlot)
        .where(
            AppointmentSlot.hall_id == hall_id,
            AppointmentSlot.day.in_(days),
            AppointmentSlot.starts_at > now,
        )
        .order_by(AppointmentSlot.starts_at, AppointmentSlot.category_id)
    )
    if category_id is not None:
        query = query.where(AppointmentSlot.category_id == category_id)
    return [
        slot
        for slot in session.scalars(query)
        if _within_hours(hours[slot.day], slot.day, slot.starts_at, slot.ends_at)
    ]


def set_capacity(
    session: Session, slot: AppointmentSlot, capacity: int, *, actor: Actor, now: dt.datetime
) -> AppointmentSlot:
    """Change a slot's capacity; never below what is already booked (guarded UPDATE)."""
    result = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot.id, AppointmentSlot.booked <= capacity)
        .values(capacity=capacity)
        .execution_options(synchronize_session=False)
    )
    session.refresh(slot)
    if affected_rows(result) != 1:
        raise errors.CapacityBelowBooked(booked=slot.booked)
    audit(
        session,
        "appointment.slot_capacity",
        actor=actor,
        now=now,
        subject_type="appointment_slot",
        subject_id=slot.id,
        details={"capacity": capacity},
    )
    return slot


# --- booking ---------------------------------------------------------------------------------


def active_suspension(session: Session, user_id: int, now: dt.datetime) -> BookingSuspension | None:
    """The suspension in force for the citizen, if any (the one ending last)."""
    return session.scalars(
        select(BookingSuspension)
        .where(BookingSuspension.user_id == user_id, BookingSuspension.ends_at > now)
        .order_by(BookingSuspension.ends_at.desc())
        .limit(1)
    ).first()


def _by_key(session: Session, user_id: int, key: str) -> Appointment | None:
    return session.scalars(
        select(Appointment).where(
            Appointment.user_id == user_id, Appointment.idempotency_key == key
        )
    ).first()


def _live_on_day(user_id: int, category_id: int, day: dt.date) -> Select[Any]:
    return select(Appointment).where(
        Appointment.user_id == user_id,
        Appointment.category_id == category_id,
        Appointment.day == day,
        Appointment.status != AppointmentStatus.CANCELLED,
    )


@dataclass(frozen=True)
class Booking:
    appointment: Appointment
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def book(
    session: Session,
    *,
    user_id: int,
    slot_id: int,
    idempotency_key: str | None,
    rules: AppointmentRules,
    now: dt.datetime,
) -> Booking:
    """Book a slot for the citizen: one live booking per category and day, never over capacity.

    A request repeated with the same Idempotency-Key returns the first booking.
    """
    if idempotency_key:
        earlier = _by_key(session, user_id, idempotency_key)
        if earlier is not None:
            if earlier.slot_id != slot_id:
                raise errors.IdempotencyKeyReused()
            return Booking(earlier, created=False)
    slot = session.get(AppointmentSlot, slot_id)
    if slot is None:
        raise errors.SlotNotFound()
    hours = bookable_hours(session, slot.hall_id, rules=rules, now=now).get(slot.day)
    if (
        slot.starts_at <= now
        or hours is None
        or not _within_hours(hours, slot.day, slot.starts_at, slot.ends_at)
    ):
        raise errors.SlotNotBookable()
    category = session.get(ServiceCategory, slot.category_id)
    if category is None or not category.active:
        raise errors.SlotNotBookable()
    suspension = active_suspension(session, user_id, now)
    if suspension is not None:
        raise errors.BookingSuspended(until=suspension.ends_at.isoformat())
    existing = session.scalars(_live_on_day(user_id, slot.category_id, slot.day)).first()
    if existing is not None:
        raise errors.AlreadyBooked(appointment_id=existing.id)
    try:
        with session.begin_nested():
            taken = session.execute(
                update(AppointmentSlot)
                .where(
                    AppointmentSlot.id == slot.id,
                    AppointmentSlot.booked < AppointmentSlot.capacity,
                )
                .values(booked=AppointmentSlot.booked + 1)
                .execution_options(synchronize_session=False)
            )
            if affected_rows(taken) != 1:
                raise errors.SlotFull()
            appointment = Appointment(
                slot_id=slot.id,
                user_id=user_id,
                hall_id=slot.hall_id,
                category_id=slot.category_id,
                day=slot.day,
                starts_at=slot.starts_at,
                status=AppointmentStatus.BOOKED,
                idempotency_key=idempotency_key,
                booked_at=now,
            )
            session.add(appointment)
    except IntegrityError:
        # The same citizen's concurrent request won the unique index; its increment stayed,
        # ours was rolled back with the savepoint.
        if idempotency_key:
            earlier = _by_key(session, user_id, idempotency_key)
            if earlier is not None and earlier.slot_id == slot_id:
                return Booking(earlier, created=False)
        existing = session.scalars(_live_on_day(user_id, slot.category_id, slot.day)).first()
        raise errors.AlreadyBooked(appointment_id=existing.id if existing else None) from None
    session.expire(slot, ["booked"])
    audit(
        session,
        "appointment.booked",
        actor=Actor("user", user_id),
        now=now,
        subject_type="appointment",
        subject_id=appointment.id,
        details={"slot_id": slot.id, "hall_id": slot.hall_id},
    )
    notices.notify_booked(session, appointment, rules=rules, now=now)
    return Booking(appointment, created=True)


def get_for_user(session: Session, appointment_id: int, user_id: int) -> Appointment:
    """The citizen's own appointment; another citizen's reads as missing."""
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or appointment.user_id != user_id:
        raise errors.AppointmentNotFound()
    return appointment


def list_for_user(
    session: Session, user_id: int, *, upcoming_only: bool, now: dt.datetime
) -> list[Appointment]:
    """The citizen's appointments, soonest first; only live future ones if `upcoming_only`."""
    query = select(Appointment).where(Appointment.user_id == user_id)
    if upcoming_only:
        query = query.where(
            Appointment.status.in_((AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)),
            Appointment.day >= local_day(now),
        )
        return list(session.scalars(query.order_by(Appointment.starts_at)))
    return list(session.scalars(query.order_by(Appointment.starts_at.desc()).limit(200)))


def cancel(session: Session, appointment: Appointment, *, now: dt.datetime) -> Appointment:
    """Cancel a booked appointment before its slot starts, giving the place back."""
    if appointment.status != AppointmentStatus.BOOKED:
        raise errors.AppointmentNotActive(status=appointment.status.value)
    if now >= appointment.starts_at:
        raise errors.CancelTooLate()
    # A double tap, or the sweep, got there first.
    if not _release(session, appointment, now=now):
        raise errors.AppointmentNotActive(status=appointment.status.value)
    audit(
        session,
        "appointment.cancelled",
        actor=Actor("user", appointment.user_id),
        now=now,
        subject_type="appointment",
        subject_id=appointment.id,
    )
    return appointment


def cancel_unkeepable(
    session: Session, hall_id: int, *, actor: Actor, rules: AppointmentRules, now: dt.datetime
) -> int:
    """Cancel, for the hall, the booked appointments still to come that it can no longer keep,
    and tell each citizen why; returns how many. Called in the transaction of every change
    to the hall's calendar or categories: left booked, the reminder would send citizens to a
    closed hall or a stopped category (check-in refuses it) and the sweep would count them
    missed. Not kept: the day no longer opens, its hours no longer cover the slot, or the
    category stopped."""
    rows = session.execute(
        select(Appointment, AppointmentSlot, ServiceCategory.active)
        .join(AppointmentSlot, Appointment.slot_id == AppointmentSlot.id)
        .join(ServiceCategory, Appointment.category_id == ServiceCategory.id)
        .where(
            Appointment.hall_id == hall_id,
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at > now,
        )
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    hours: dict[dt.date, list[tuple[dt.time, dt.time]]] = {}
    cancelled = 0
    for appointment, slot, category_active in rows:
        if slot.day not in hours:
            hours[slot.day] = hours_on(session, hall_id, slot.day)
        if not category_active:
            reason = notices.CancelReason.CATEGORY_STOPPED
        elif not hours[slot.day]:
            reason = notices.CancelReason.DAY_CLOSED
        elif not _within_hours(hours[slot.day], slot.day, slot.starts_at, slot.ends_at):
            reason = notices.CancelReason.HOURS_CHANGED
        else:
            continue
        if not _release(session, appointment, now=now):
            continue  # the citizen cancelled it a moment ago
        notices.notify_cancelled_by_hall(session, appointment, reason=reason, rules=rules, now=now)
        audit(
            session,
            "appointment.cancelled_by_hall",
            actor=actor,
            now=now,
            subject_type="appointment",
            subject_id=appointment.id,
            details={"hall_id": hall_id, "day": slot.day.isoformat(), "reason": reason.name},
        )
        cancelled += 1
    return cancelled


def _release(session: Session, appointment: Appointment, *, now: dt.datetime) -> bool:
    """Cancel a booked appointment and give its place back; withdraw its reminder. False
    when it was no longer booked (the row is then read afresh)."""
    result = session.execute(
        update(Appointment)
        .where(
            Appointment.id == appointment.id,
            Appointment.status == AppointmentStatus.BOOKED,
        )
        .values(status=AppointmentStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        session.refresh(appointment)
        return False
    session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == appointment.slot_id, AppointmentSlot.booked > 0)
        .values(booked=AppointmentSlot.booked - 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(appointment)
    session.expire(appointment.slot, ["booked"])
    notices.withdraw_reminder(session, appointment)
    return True


# --- missed appointments and suspensions ------------------------------------------------------


def mark_missed(
    session: Session, *, rules: AppointmentRules, now: dt.datetime, batch: int = 500
) -> int:
    """Mark booked appointments whose check-in window has closed as missed, and suspend the
    citizens who reached the miss limit. Safe to run concurrently; returns how many."""
    cutoff = now - rules.checkin_late
    total = 0
    while True:
        candidates = (
            select(Appointment.id)
            .where(Appointment.status == AppointmentStatus.BOOKED, Appointment.starts_at < cutoff)
            .order_by(Appointment.id)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list(session.scalars(candidates))
        if not ids:
            return total
        marked = session.execute(
            update(Appointment)
            .where(Appointment.id.in_(ids), Appointment.status == AppointmentStatus.BOOKED)
            .values(status=AppointmentStatus.MISSED, missed_at=now)
            .returning(Appointment.id, Appointment.user_id)
            .execution_options(synchronize_session=False)
        ).all()
        total += len(marked)
        for user_id in sorted({user_id for _, user_id in marked}):
            suspend_if_due(session, user_id, rules=rules, now=now)
        if len(ids) < batch:
            return total


def suspend_if_due(
    session: Session, user_id: int, *, rules: AppointmentRules, now: dt.datetime
) -> BookingSuspension | None:
    """Suspend booking when the citizen has `miss_limit` misses within the window.

    Misses that already led to a suspension do not count again.
    """
    last = session.scalars(
        select(BookingSuspension)
        .where(BookingSuspension.user_id == user_id)
        .order_by(BookingSuspension.starts_at.desc())
        .limit(1)
    ).first()
    query = select(Appointment.id).where(
        Appointment.user_id == user_id,
        Appointment.status == AppointmentStatus.MISSED,
        Appointment.starts_at >= now - dt.timedelta(days=rules.miss_window_days),
    )
    if last is not None:
        query = query.where(Appointment.missed_at > last.starts_at)
    misses = list(session.scalars(query.order_by(Appointment.starts_at)))
    if len(misses) < rules.miss_limit:
        return None
    dialect = session.get_bind().dialect.name
    insert = insert_on_conflict(dialect)
    new_id = session.execute(
        insert(BookingSuspension)
        .values(
            user_id=user_id,
            trigger_appointment_id=misses[-1],
            misses=len(misses),
            starts_at=now,
            ends_at=now + dt.timedelta(days=rules.suspension_days),
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["trigger_appointment_id"])
        .returning(BookingSuspension.id)
    ).scalar_one_or_none()
    if new_id is None:
        return None
    audit(
        session,
        "appointment.booking_suspended",
        actor=Actor.system(),
        now=now,
        subject_type="user",
        subject_id=user_id,
        details={"misses": len(misses), "days": rules.suspension_days},
    )
    return session.get(BookingSuspension, new_id)


def hall_day(
    session: Session, hall_id: int, day: dt.date, *, offset: int, limit: int
) -> list[tuple[Appointment, User | None]]:
    """A page of the hall's appointments of `day` in time order, each with its citizen."""
    rows = session.scalars(
        select(Appointment)
        .where(Appointment.hall_id == hall_id, Appointment.day == day)
        .order_by(Appointment.starts_at, Appointment.id)
        .offset(offset)
        .limit(limit)
    ).all()
    user_ids = {a.user_id for a in rows}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    return [(appointment, users.get(appointment.user_id)) for appointment in rows]


def count_by_status(session: Session, hall_id: int, day: dt.date) -> dict[str, int]:
    """How many of the hall's appointments on `day` are in each status."""
    rows = session.execute(
        select(Appointment.status, func.count())
        .where(Appointment.hall_id == hall_id, Appointment.day == day)
        .group_by(Appointment.status)
    ).all()
    counts = {status.value: 0 for status in AppointmentStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


def fill_by_category(session: Session, hall_id: int, day: dt.date) -> dict[int, tuple[int, int]]:
    """How full the hall's appointment slots of `day` are: category id -> (booked, capacity)."""
    rows = session.execute(
        select(
            AppointmentSlot.category_id,
            func.coalesce(func.sum(AppointmentSlot.booked), 0),
            func.coalesce(func.sum(AppointmentSlot.capacity), 0),
        )
        .where(AppointmentSlot.hall_id == hall_id, AppointmentSlot.day == day)
        .group_by(AppointmentSlot.category_id)
    ).all()
    return {int(category): (int(booked), int(capacity)) for category, booked, capacity in rows}

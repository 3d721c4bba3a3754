"""Check-in: an appointment turns into a priority ticket when the citizen arrives.

The citizen scans the hall's code (printed, with location, or the entrance screen's dynamic
code), or a window terminal scans the citizen's personal code. Check-in is open from
`checkin_early` before to `checkin_late` after the slot start. The ticket comes from the
queueing service with `priority=APPOINTMENT` and `due_at` = slot start, so call-next serves it
ahead of the walk-ins once its slot is due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.appointments import errors
from app.appointments.models import Appointment, AppointmentStatus
from app.appointments.rules import AppointmentRules
from app.audit.service import Actor
from app.audit.service import record as audit
from app.db import affected_rows
from app.halls.models import ServiceCategory
from app.queueing import codes
from app.queueing.models import Ticket, TicketPriority, TicketSource
from app.queueing.settings import QueueSettings
from app.queueing.taking import issue_ticket


@dataclass(frozen=True)
class CheckIn:
    appointment: Appointment
    ticket: Ticket


def check_in(
    session: Session,
    appointment: Appointment,
    *,
    hall_id: int,
    via: str,
    actor: Actor,
    settings: QueueSettings,
    rules: AppointmentRules,
    now: dt.datetime,
) -> CheckIn:
    """Check the appointment in at `hall_id` and issue its priority ticket.

    Checking in twice returns the ticket of the first check-in.
    """
    if appointment.hall_id != hall_id:
        raise errors.WrongHall()
    if appointment.status == AppointmentStatus.CHECKED_IN and appointment.ticket_id:
        return CheckIn(appointment, session.get_one(Ticket, appointment.ticket_id))
    if appointment.status != AppointmentStatus.BOOKED:
        raise errors.AppointmentNotActive(status=appointment.status.value)
    opens_at = appointment.starts_at - rules.checkin_early
    if now < opens_at:
        raise errors.CheckInTooEarly(opens_at=opens_at.isoformat())
    if now > appointment.starts_at + rules.checkin_late:
        raise errors.CheckInTooLate()
    claimed = session.execute(
        update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.status == AppointmentStatus.BOOKED)
        .values(status=AppointmentStatus.CHECKED_IN, checked_in_at=now, checked_in_via=via)
        .execution_options(synchronize_session=False)
    )
    session.refresh(appointment)
    if affected_rows(claimed) != 1:
        # A concurrent check-in (phone and terminal at once) or the miss sweep was first.
        if appointment.status == AppointmentStatus.CHECKED_IN and appointment.ticket_id:
            return CheckIn(appointment, session.get_one(Ticket, appointment.ticket_id))
        raise errors.AppointmentNotActive(status=appointment.status.value)
    issued = issue_ticket(
        session,
        category=session.get_one(ServiceCategory, appointment.category_id),
        user_id=appointment.user_id,
        source=TicketSource.APPOINTMENT,
        actor=actor,
        now=now,
        settings=settings,
        priority=TicketPriority.APPOINTMENT,
        due_at=appointment.starts_at,
        appointment_id=appointment.id,
        # The slot lay within opening hours and was booked within capacity; check-in may
        # begin before the doors open.
        check_open=False,
        enforce_cap=False,
    )
    appointment.ticket_id = issued.ticket.id
    session.flush()
    audit(
        session,
        "appointment.checked_in",
        actor=actor,
        now=now,
        subject_type="appointment",
        subject_id=appointment.id,
        details={"via": via, "ticket_id": issued.ticket.id},
    )
    return CheckIn(appointment, issued.ticket)


def check_in_with_hall_code(
    session: Session,
    appointment: Appointment,
    *,
    token: str,
    latitude: float | None,
    longitude: float | None,
    settings: QueueSettings,
    rules: AppointmentRules,
    now: dt.datetime,
) -> CheckIn:
    """The citizen scanned a hall code on arrival; it must be the appointment's hall."""
    scan = codes.verify_hall_token(
        session,
        settings,
        token,
        now=now,
        latitude=latitude,
        longitude=longitude,
        hall_id=appointment.hall_id,
    )
    return check_in(
        session,
        appointment,
        hall_id=scan.hall_id,
        via="hall_code",
        actor=Actor("user", appointment.user_id),
        settings=settings,
        rules=rules,
        now=now,
    )


def due_for_check_in(
    session: Session, user_id: int, hall_id: int, *, rules: AppointmentRules, now: dt.datetime
) -> list[Appointment]:
    """The citizen's booked appointments at the hall whose check-in window is open now."""
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.user_id == user_id,
                Appointment.hall_id == hall_id,
                Appointment.status == AppointmentStatus.BOOKED,
                Appointment.starts_at <= now + rules.checkin_early,
                Appointment.starts_at >= now - rules.checkin_late,
            )
            .order_by(Appointment.starts_at, Appointment.id)
        )
    )


def check_in_with_personal_code(
    session: Session,
    *,
    token: str,
    hall_id: int,
    appointment_id: int | None,
    staff_id: int,
    settings: QueueSettings,
    rules: AppointmentRules,
    now: dt.datetime,
) -> CheckIn:
    """A terminal scanned the citizen's personal code (used once); check in the given
    appointment, or the earliest one due at this hall."""
    scan = codes.verify_personal(settings, token, now=now)
    codes.consume_personal(session, scan, action="appt_checkin", staff_id=staff_id, now=now)
    if appointment_id is not None:
        appointment = session.get(Appointment, appointment_id)
        if appointment is None or appointment.user_id != scan.user_id:
            raise errors.NoAppointmentToCheckIn()
    else:
        due = due_for_check_in(session, scan.user_id, hall_id, rules=rules, now=now)
        if not due:
            raise errors.NoAppointmentToCheckIn()
        appointment = due[0]
    return check_in(
        session,
        appointment,
        hall_id=hall_id,
        via="personal_code",
        actor=Actor("staff", staff_id),
        settings=settings,
        rules=rules,
        now=now,
    )

"""Check-in by hall code or personal code turns an appointment into a priority ticket."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from app.appointments import checkin, errors
from app.appointments.models import Appointment, AppointmentSlot, AppointmentStatus
from app.identity.models import User
from app.queueing import codes
from app.queueing import errors as queue_errors
from app.queueing.models import TicketPriority, TicketSource, TicketStatus
from app.queueing.settings import QueueSettings, from_config
from tests.factories.appointments import RULES, HallSetup, local

SLOT_START = local(2026, 10, 8, 9, 0)


@pytest.fixture
def settings(app: Flask) -> QueueSettings:
    return from_config(app.config)


@pytest.fixture
def booked(
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
) -> Appointment:
    hall = appointment_hall()
    return create_appointment(create_user(), create_slot(hall.categories[0], SLOT_START))


def test_scanning_the_entrance_code_checks_in_with_a_priority_ticket(
    session: Session, booked: Appointment, settings: QueueSettings
) -> None:
    now = SLOT_START - dt.timedelta(minutes=30)  # doors not open yet: check-in may start
    token, _ = codes.dynamic_token(settings, booked.hall_id, now)

    result = checkin.check_in_with_hall_code(
        session,
        booked,
        token=token,
        latitude=None,
        longitude=None,
        settings=settings,
        rules=RULES,
        now=now,
    )

    ticket = result.ticket
    assert booked.status == AppointmentStatus.CHECKED_IN
    assert booked.checked_in_via == "hall_code" and booked.ticket_id == ticket.id
    assert ticket.priority == TicketPriority.APPOINTMENT
    assert ticket.due_at == SLOT_START
    assert ticket.source == TicketSource.APPOINTMENT
    assert ticket.appointment_id == booked.id
    assert ticket.user_id == booked.user_id and ticket.status == TicketStatus.WAITING
    assert ticket.display == "A001"


def test_the_printed_code_needs_the_phone_near_the_hall(
    session: Session, booked: Appointment, settings: QueueSettings
) -> None:
    code = codes.create_printed_code(session, settings, booked.hall_id, label="入口", staff_id=None)
    token = codes.printed_token(settings, code)
    now = SLOT_START

    with pytest.raises(queue_errors.LocationTooFar):
        checkin.check_in_with_hall_code(
            session,
            booked,
            token=token,
            latitude=23.20,
            longitude=113.30,
            settings=settings,
            rules=RULES,
            now=now,
        )
    result = checkin.check_in_with_hall_code(
        session,
        booked,
        token=token,
        latitude=22.9401,
        longitude=113.3801,
        settings=settings,
        rules=RULES,
        now=now,
    )
    assert result.ticket.priority == TicketPriority.APPOINTMENT


def test_another_halls_code_is_refused(
    session: Session,
    booked: Appointment,
    settings: QueueSettings,
    appointment_hall: Callable[..., HallSetup],
) -> None:
    elsewhere = appointment_hall()
    token, _ = codes.dynamic_token(settings, elsewhere.id, SLOT_START)

    with pytest.raises(queue_errors.CodeWrongHall):
        checkin.check_in_with_hall_code(
            session,
            booked,
            token=token,
            latitude=None,
            longitude=None,
            settings=settings,
            rules=RULES,
            now=SLOT_START,
        )
    assert booked.status == AppointmentStatus.BOOKED


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (dt.timedelta(minutes=-31), errors.CheckInTooEarly),
        (dt.timedelta(minutes=15, seconds=1), errors.CheckInTooLate),
    ],
)
def test_check_in_is_open_from_thirty_minutes_before_to_fifteen_after(
    session: Session,
    booked: Appointment,
    settings: QueueSettings,
    offset: dt.timedelta,
    error: type[Exception],
) -> None:
    now = SLOT_START + offset
    token, _ = codes.dynamic_token(settings, booked.hall_id, now)

    with pytest.raises(error):
        checkin.check_in_with_hall_code(
            session,
            booked,
            token=token,
            latitude=None,
            longitude=None,
            settings=settings,
            rules=RULES,
            now=now,
        )


def test_the_last_minute_of_the_window_still_checks_in(
    session: Session, booked: Appointment, settings: QueueSettings
) -> None:
    now = SLOT_START + dt.timedelta(minutes=15)
    token, _ = codes.dynamic_token(settings, booked.hall_id, now)
    result = checkin.check_in_with_hall_code(
        session,
        booked,
        token=token,
        latitude=None,
        longitude=None,
        settings=settings,
        rules=RULES,
        now=now,
    )
    assert result.appointment.status == AppointmentStatus.CHECKED_IN


def test_checking_in_twice_returns_the_same_ticket(
    session: Session, booked: Appointment, settings: QueueSettings
) -> None:
    token, _ = codes.dynamic_token(settings, booked.hall_id, SLOT_START)
    kwargs = dict(
        token=token, latitude=None, longitude=None, settings=settings, rules=RULES, now=SLOT_START
    )

    first = checkin.check_in_with_hall_code(session, booked, **kwargs)  # type: ignore[arg-type]
    second = checkin.check_in_with_hall_code(session, booked, **kwargs)  # type: ignore[arg-type]

    assert second.ticket.id == first.ticket.id


def test_cancelled_and_missed_appointments_cannot_check_in(
    session: Session, booked: Appointment, settings: QueueSettings
) -> None:
    booked.status = AppointmentStatus.MISSED
    session.flush()
    token, _ = codes.dynamic_token(settings, booked.hall_id, SLOT_START)
    with pytest.raises(errors.AppointmentNotActive):
        checkin.check_in_with_hall_code(
            session,
            booked,
            token=token,
            latitude=None,
            longitude=None,
            settings=settings,
            rules=RULES,
            now=SLOT_START,
        )


def test_a_terminal_checks_in_the_citizen_by_personal_code_once(
    session: Session,
    booked: Appointment,
    settings: QueueSettings,
    create_staff: Callable[..., object],
) -> None:
    clerk = create_staff()
    now = SLOT_START - dt.timedelta(minutes=10)
    token, _ = codes.personal_token(settings, booked.user_id, now)

    result = checkin.check_in_with_personal_code(
        session,
        token=token,
        hall_id=booked.hall_id,
        appointment_id=None,
        staff_id=clerk.id,
        settings=settings,
        rules=RULES,
        now=now,  # type: ignore[attr-defined]
    )

    assert result.appointment.id == booked.id
    assert result.appointment.checked_in_via == "personal_code"
    assert result.ticket.priority == TicketPriority.APPOINTMENT
    with pytest.raises(queue_errors.CodeReplayed):
        checkin.check_in_with_personal_code(
            session,
            token=token,
            hall_id=booked.hall_id,
            appointment_id=None,
            staff_id=clerk.id,
            settings=settings,
            rules=RULES,
            now=now,  # type: ignore[attr-defined]
        )


def test_a_terminal_finds_nothing_to_check_in_outside_the_window(
    session: Session,
    booked: Appointment,
    settings: QueueSettings,
    create_staff: Callable[..., object],
) -> None:
    now = SLOT_START - dt.timedelta(hours=2)
    token, _ = codes.personal_token(settings, booked.user_id, now)

    with pytest.raises(errors.NoAppointmentToCheckIn):
        checkin.check_in_with_personal_code(
            session,
            token=token,
            hall_id=booked.hall_id,
            appointment_id=None,
            staff_id=create_staff().id,
            settings=settings,
            rules=RULES,
            now=now,  # type: ignore[attr-defined]
        )


def test_an_appointment_at_another_hall_refuses_at_this_terminal(
    session: Session,
    booked: Appointment,
    settings: QueueSettings,
    appointment_hall: Callable[..., HallSetup],
    create_staff: Callable[..., object],
) -> None:
    elsewhere = appointment_hall()
    token, _ = codes.personal_token(settings, booked.user_id, SLOT_START)

    with pytest.raises(errors.WrongHall):
        checkin.check_in_with_personal_code(
            session,
            token=token,
            hall_id=elsewhere.id,
            appointment_id=booked.id,
            staff_id=create_staff().id,
            settings=settings,
            rules=RULES,
            now=SLOT_START,  # type: ignore[attr-defined]
        )

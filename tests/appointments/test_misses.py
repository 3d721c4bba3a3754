"""Missed appointments are marked after the check-in window; 3 in 30 days suspend booking."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments import errors, service
from app.appointments.models import (
    Appointment,
    AppointmentSlot,
    AppointmentStatus,
    BookingSuspension,
)
from app.identity.models import User
from tests.factories.appointments import RULES, HallSetup, local


@pytest.fixture
def hall(appointment_hall: Callable[..., HallSetup]) -> HallSetup:
    return appointment_hall()


def test_an_appointment_is_missed_only_after_its_check_in_window(
    session: Session,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
) -> None:
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    booked = create_appointment(create_user(), slot)
    cancelled = create_appointment(create_user(), slot, status=AppointmentStatus.CANCELLED)

    assert service.mark_missed(session, rules=RULES, now=local(2026, 10, 8, 9, 15)) == 0
    marked = service.mark_missed(session, rules=RULES, now=local(2026, 10, 8, 9, 16))

    assert marked == 1
    session.refresh(booked)
    session.refresh(cancelled)
    assert booked.status == AppointmentStatus.MISSED
    assert booked.missed_at == local(2026, 10, 8, 9, 16)
    assert cancelled.status == AppointmentStatus.CANCELLED
    assert service.mark_missed(session, rules=RULES, now=local(2026, 10, 8, 18, 0)) == 0


def _miss(
    session: Session,
    user: User,
    slot: AppointmentSlot,
    create_appointment: Callable[..., Appointment],
) -> None:
    create_appointment(user, slot)
    service.mark_missed(session, rules=RULES, now=slot.starts_at + dt.timedelta(hours=1))


def test_three_misses_in_thirty_days_suspend_booking_for_seven_days(
    session: Session,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
) -> None:
    user = create_user()
    a = hall.categories[0]
    for day in (dt.date(2026, 11, 2), dt.date(2026, 11, 9)):
        _miss(
            session,
            user,
            create_slot(a, local(day.year, day.month, day.day, 9)),
            create_appointment,
        )
    assert service.active_suspension(session, user.id, local(2026, 11, 9, 12)) is None

    third = create_slot(a, local(2026, 11, 16, 9))
    _miss(session, user, third, create_appointment)

    suspended_at = local(2026, 11, 16, 10)
    suspension = service.active_suspension(session, user.id, suspended_at)
    assert suspension is not None
    assert suspension.misses == 3
    assert suspension.ends_at == suspended_at + dt.timedelta(days=7)

    wanted = create_slot(a, local(2026, 11, 18, 9))
    with pytest.raises(errors.BookingSuspended) as refused:
        service.book(
            session,
            user_id=user.id,
            slot_id=wanted.id,
            idempotency_key=None,
            rules=RULES,
            now=local(2026, 11, 17, 9),
        )
    assert refused.value.details["until"] == suspension.ends_at.isoformat()

    later = create_slot(a, local(2026, 11, 24, 9))
    assert service.book(
        session,
        user_id=user.id,
        slot_id=later.id,
        idempotency_key=None,
        rules=RULES,
        now=local(2026, 11, 23, 10, 1),
    ).created


def test_misses_older_than_thirty_days_do_not_count(
    session: Session,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
) -> None:
    user = create_user()
    a = hall.categories[0]
    for when in (local(2026, 9, 1, 9), local(2026, 10, 20, 9), local(2026, 11, 2, 9)):
        _miss(session, user, create_slot(a, when), create_appointment)

    assert (
        session.scalars(select(BookingSuspension).where(BookingSuspension.user_id == user.id)).all()
        == []
    )


def test_misses_that_caused_a_suspension_do_not_count_again(
    session: Session,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
) -> None:
    user = create_user()
    a = hall.categories[0]
    for when in (local(2026, 11, 2, 9), local(2026, 11, 3, 9), local(2026, 11, 4, 9)):
        _miss(session, user, create_slot(a, when), create_appointment)
    # After the suspension, one more miss within the same 30 days is not a fourth strike.
    _miss(session, user, create_slot(a, local(2026, 11, 16, 9)), create_appointment)

    suspensions = session.scalars(
        select(BookingSuspension).where(BookingSuspension.user_id == user.id)
    ).all()
    assert len(suspensions) == 1


def test_running_the_suspension_check_twice_suspends_once(
    session: Session,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
) -> None:
    user = create_user()
    a = hall.categories[0]
    for when in (local(2026, 11, 2, 9), local(2026, 11, 3, 9), local(2026, 11, 4, 9)):
        create_appointment(
            user, create_slot(a, when), status=AppointmentStatus.MISSED, missed_at=when
        )
    now = local(2026, 11, 4, 12)

    first = service.suspend_if_due(session, user.id, rules=RULES, now=now)
    second = service.suspend_if_due(session, user.id, rules=RULES, now=now)

    assert first is not None and second is None

"""Slots on working days, booking rules, cancelling, and their refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments import errors, service
from app.appointments.models import AppointmentSlot, AppointmentStatus
from app.appointments.rules import AppointmentRules
from app.audit.models import AuditEntry
from app.identity.models import User
from tests.factories.appointments import RULES, HallSetup, local

# Wednesday 30 September 2026, 10:00 in Panyu: National Day holidays follow (1-7 Oct),
# Saturday 10 October is a make-up workday.
NOW = local(2026, 9, 30, 10, 0)


def test_bookable_days_skip_holidays_and_include_make_up_workdays(
    session: Session, appointment_hall: Callable[..., HallSetup]
) -> None:
    hall = appointment_hall()

    days = list(service.bookable_hours(session, hall.id, rules=RULES, now=NOW))

    assert days == [
        dt.date(2026, 9, 30),
        dt.date(2026, 10, 8),
        dt.date(2026, 10, 9),
        dt.date(2026, 10, 10),  # Saturday, 调休上班
        dt.date(2026, 10, 12),
        dt.date(2026, 10, 13),
        dt.date(2026, 10, 14),
    ]


def test_open_slots_follows_opening_hours_and_is_idempotent(
    session: Session, appointment_hall: Callable[..., HallSetup]
) -> None:
    hall = appointment_hall()

    created = service.open_slots(session, hall.id, rules=RULES, now=NOW)
    again = service.open_slots(session, hall.id, rules=RULES, now=NOW)

    # 13 half-hour slots a day (09:00-12:00: 6, 13:30-17:00: 7); today from 10:30 on: 10.
    assert created == 2 * (10 + 6 * 13)
    assert again == 0
    today = session.scalars(
        select(AppointmentSlot)
        .where(
            AppointmentSlot.category_id == hall.categories[0].id,
            AppointmentSlot.day == dt.date(2026, 9, 30),
        )
        .order_by(AppointmentSlot.starts_at)
    ).all()
    assert today[0].starts_at == local(2026, 9, 30, 10, 30)
    assert today[-1].ends_at == local(2026, 9, 30, 17, 0)
    assert all(slot.capacity == RULES.slot_capacity and slot.booked == 0 for slot in today)
    assert local(2026, 9, 30, 12, 0) not in [slot.starts_at for slot in today]  # lunch


def test_booking_counts_against_capacity_and_is_audited(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=2)
    user = create_user()

    booking = service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key=None, rules=RULES, now=NOW
    )

    assert booking.created
    assert booking.appointment.status == AppointmentStatus.BOOKED
    assert booking.appointment.day == dt.date(2026, 10, 8)
    assert slot.booked == 1 and slot.remaining == 1
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "appointment.booked")
    ).one()
    assert entry.subject_id == str(booking.appointment.id)


def test_a_full_slot_refuses_with_slot_full(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=1)
    service.book(
        session,
        user_id=create_user().id,
        slot_id=slot.id,
        idempotency_key=None,
        rules=RULES,
        now=NOW,
    )

    with pytest.raises(errors.SlotFull):
        service.book(
            session,
            user_id=create_user().id,
            slot_id=slot.id,
            idempotency_key=None,
            rules=RULES,
            now=NOW,
        )
    session.refresh(slot)
    assert slot.booked == 1


def test_one_booking_per_category_and_day_until_cancelled(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    a, b = hall.categories
    morning = create_slot(a, local(2026, 10, 8, 9, 0))
    afternoon = create_slot(a, local(2026, 10, 8, 14, 0))
    other_category = create_slot(b, local(2026, 10, 8, 14, 0))
    next_day = create_slot(a, local(2026, 10, 9, 9, 0))
    user = create_user()

    def book(slot: AppointmentSlot) -> service.Booking:
        return service.book(
            session, user_id=user.id, slot_id=slot.id, idempotency_key=None, rules=RULES, now=NOW
        )

    first = book(morning).appointment
    with pytest.raises(errors.AlreadyBooked) as refused:
        book(afternoon)
    assert refused.value.details == {"appointment_id": first.id}
    book(other_category)
    book(next_day)

    service.cancel(session, first, now=NOW)
    assert book(afternoon).created


def test_a_retried_booking_with_the_same_key_returns_the_first(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    other = create_slot(hall.categories[1], local(2026, 10, 8, 9, 0))
    user = create_user()

    first = service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key="k-1", rules=RULES, now=NOW
    )
    again = service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key="k-1", rules=RULES, now=NOW
    )

    assert not again.created and again.appointment.id == first.appointment.id
    session.refresh(slot)
    assert slot.booked == 1
    with pytest.raises(errors.IdempotencyKeyReused):
        service.book(
            session, user_id=user.id, slot_id=other.id, idempotency_key="k-1", rules=RULES, now=NOW
        )


@pytest.mark.parametrize(
    "starts_at",
    [
        local(2026, 9, 30, 9, 30),  # already started
        local(2026, 10, 15, 9, 0),  # the 8th working day
        local(2026, 10, 3, 9, 0),  # a public holiday
    ],
)
def test_slots_outside_the_bookable_days_refuse(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    starts_at: dt.datetime,
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], starts_at)

    with pytest.raises(errors.SlotNotBookable):
        service.book(
            session,
            user_id=create_user().id,
            slot_id=slot.id,
            idempotency_key=None,
            rules=RULES,
            now=NOW,
        )


def test_unknown_slot_refuses(session: Session, create_user: Callable[..., User]) -> None:
    with pytest.raises(errors.SlotNotFound):
        service.book(
            session,
            user_id=create_user().id,
            slot_id=999_999,
            idempotency_key=None,
            rules=RULES,
            now=NOW,
        )


def test_cancel_gives_the_place_back_until_the_slot_starts(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=1)
    user = create_user()
    appointment = service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key=None, rules=RULES, now=NOW
    ).appointment

    service.cancel(session, appointment, now=NOW)

    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_at == NOW
    session.refresh(slot)
    assert slot.booked == 0
    with pytest.raises(errors.AppointmentNotActive):
        service.cancel(session, appointment, now=NOW)

    late = service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key=None, rules=RULES, now=NOW
    ).appointment
    with pytest.raises(errors.CancelTooLate):
        service.cancel(session, late, now=local(2026, 10, 8, 9, 0))


def test_capacity_cannot_drop_below_what_is_booked(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    create_appointment: Callable[..., object],
) -> None:
    from app.audit.service import Actor

    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=4)
    create_appointment(create_user(), slot)
    create_appointment(create_user(), slot)

    service.set_capacity(session, slot, 2, actor=Actor("staff", None), now=NOW)
    assert slot.capacity == 2
    with pytest.raises(errors.CapacityBelowBooked):
        service.set_capacity(session, slot, 1, actor=Actor("staff", None), now=NOW)
    assert slot.capacity == 2


def test_rules_come_from_the_settings(app) -> None:  # type: ignore[no-untyped-def]
    rules = AppointmentRules.from_config(app.config)
    assert (rules.days_ahead, rules.checkin_early_minutes, rules.checkin_late_minutes) == (
        7,
        30,
        15,
    )
    assert (rules.miss_limit, rules.miss_window_days, rules.suspension_days) == (3, 30, 7)

"""Subscribe messages about appointments: booked at once, a reminder before the slot,
withdrawn when the citizen cancels."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments import service
from app.appointments.models import AppointmentSlot
from app.identity.models import User
from app.notify import outbox
from app.notify.models import NotificationOutbox, OutboxStatus
from tests.factories.appointments import RULES, HallSetup, local
from wechat.templates import DEFAULT_TEMPLATES, check_template_data

NOW = local(2026, 9, 30, 10, 0)  # Wednesday, 10:00 in Panyu


def _messages(session: Session, appointment_id: int) -> dict[str, NotificationOutbox]:
    rows = session.scalars(
        select(NotificationOutbox).where(
            NotificationOutbox.source_type == "appointment",
            NotificationOutbox.source_id == appointment_id,
        )
    ).all()
    return {row.template_key: row for row in rows}


def _book(session: Session, slot: AppointmentSlot, user: User, rules=RULES, now=NOW):
    return service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key="k1", rules=rules, now=now
    ).appointment


def test_booking_confirms_at_once_and_reminds_before_the_slot(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    appointment = _book(session, slot, create_user())

    messages = _messages(session, appointment.id)
    assert set(messages) == {"appointment_booked", "appointment_reminder"}
    booked, reminder = messages["appointment_booked"], messages["appointment_reminder"]
    assert booked.next_attempt_at == NOW
    assert reminder.next_attempt_at == local(2026, 10, 8, 7, 0)  # two hours before 09:00
    assert booked.data["thing1"] == hall.categories[0].name
    assert booked.data["thing2"] == hall.hall.name[:20]
    assert booked.data["time3"] == "2026-10-08 09:00~09:30"  # Beijing time, the whole slot
    assert booked.data["character_string4"] == f"YY{appointment.id:08d}"
    assert reminder.page == f"pages/appointment/detail?id={appointment.id}"
    for row in (booked, reminder):
        spec = DEFAULT_TEMPLATES[row.template_key]
        assert set(row.data) == set(spec.fields)
        assert check_template_data(row.data) == {}  # WeChat would accept every field

    # The reminder is not due until its time: a drain before then leaves it alone.
    early = outbox.claim_due(session, now=NOW, limit=10, lease_seconds=30)
    assert reminder.id not in [row.id for row in early]
    due = outbox.claim_due(session, now=local(2026, 10, 8, 7, 0), limit=10, lease_seconds=30)
    assert reminder.id in [row.id for row in due]


def test_a_retried_booking_enqueues_nothing_more(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    user = create_user()
    first = _book(session, slot, user)
    again = _book(session, slot, user)  # same Idempotency-Key

    assert again.id == first.id
    count = session.scalars(
        select(NotificationOutbox.id).where(NotificationOutbox.user_id == user.id)
    ).all()
    assert len(count) == 2


def test_booking_at_short_notice_sends_no_separate_reminder(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 9, 30, 11, 0))  # in one hour
    appointment = _book(session, slot, create_user())

    assert set(_messages(session, appointment.id)) == {"appointment_booked"}


def test_the_reminder_lead_is_a_setting(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    rules = dataclasses.replace(RULES, reminder_minutes=24 * 60)
    appointment = _book(session, slot, create_user(), rules=rules)

    reminder = _messages(session, appointment.id)["appointment_reminder"]
    assert reminder.next_attempt_at == local(2026, 10, 7, 9, 0)


def test_cancelling_withdraws_the_pending_reminder(
    session: Session,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    hall = appointment_hall()
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    appointment = _book(session, slot, create_user())

    service.cancel(session, appointment, now=NOW + dt.timedelta(hours=1))

    reminder = _messages(session, appointment.id)["appointment_reminder"]
    session.refresh(reminder)
    assert reminder.status == OutboxStatus.SKIPPED
    assert reminder.last_error_code == "appointment_cancelled"
    due = outbox.claim_due(session, now=local(2026, 10, 8, 7, 0), limit=10, lease_seconds=30)
    assert reminder.id not in [row.id for row in due]

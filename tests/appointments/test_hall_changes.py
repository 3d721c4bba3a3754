"""A hall that closes a day, opens fewer hours or stops a category after citizens booked: their
appointments are cancelled by the hall and they are told; slots outside the hours are no longer
offered.

Before, the appointments stayed booked: the reminder sent citizens to a closed hall, the sweep
then marked them missed, and three such misses suspended a citizen's booking.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments import service
from app.appointments.models import Appointment, AppointmentSlot, AppointmentStatus
from app.audit.models import AuditEntry
from app.identity.models import StaffAccount, User
from app.notify.models import NotificationOutbox, OutboxStatus
from tests.factories.appointments import RULES, HallSetup, local
from wechat.templates import DEFAULT_TEMPLATES, check_template_data

NOW = local(2026, 9, 30, 10, 0)  # Wednesday
DAY = "2026-10-08"  # a Thursday, a working day after the National Day holiday


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("blueprints.appointments.routes.utcnow", lambda: NOW)
    monkeypatch.setattr("blueprints.halls.routes.utcnow", lambda: NOW)


@pytest.fixture
def hall(appointment_hall: Callable[..., HallSetup]) -> HallSetup:
    return appointment_hall()


@pytest.fixture
def manager(
    create_staff: Callable[..., StaffAccount],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
) -> dict[str, str]:
    return staff_headers(create_staff())


def _book(session: Session, slot: AppointmentSlot, user: User) -> Appointment:
    booking = service.book(
        session, user_id=user.id, slot_id=slot.id, idempotency_key=None, rules=RULES, now=NOW
    )
    return booking.appointment


def _messages(session: Session, appointment: Appointment) -> dict[str, NotificationOutbox]:
    rows = session.scalars(
        select(NotificationOutbox).where(
            NotificationOutbox.source_type == "appointment",
            NotificationOutbox.source_id == appointment.id,
        )
    ).all()
    return {row.template_key: row for row in rows}


def test_closing_the_hall_for_a_day_cancels_its_appointments_and_tells_the_citizens(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    manager: dict[str, str],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    a, b = hall.categories
    morning = create_slot(a, local(2026, 10, 8, 9, 0))
    afternoon = create_slot(b, local(2026, 10, 8, 14, 0))
    next_day = create_slot(a, local(2026, 10, 9, 9, 0))
    first, second = create_user(), create_user()
    kept = _book(session, next_day, first)
    closed = [_book(session, morning, first), _book(session, afternoon, second)]

    response = client.put(
        f"/api/v1/halls/{hall.id}/special-days/{DAY}",
        json={"closed": True, "note": "台风停工"},
        headers=manager,
    )

    assert response.status_code == 200, response.json
    for appointment in closed:
        session.refresh(appointment)
        assert appointment.status == AppointmentStatus.CANCELLED
        assert appointment.cancelled_at == NOW
        messages = _messages(session, appointment)
        assert messages["appointment_reminder"].status == OutboxStatus.SKIPPED
        notice = messages["appointment_cancelled"]
        assert notice.user_id == appointment.user_id
        assert notice.data["thing4"] == "大厅当日暂停办公"
        assert set(notice.data) == set(DEFAULT_TEMPLATES["appointment_cancelled"].fields)
        assert check_template_data(notice.data) == {}
    session.refresh(morning)
    session.refresh(afternoon)
    assert (morning.booked, afternoon.booked) == (0, 0)
    session.refresh(kept)
    assert kept.status == AppointmentStatus.BOOKED
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "appointment.cancelled_by_hall")
    ).all()
    assert sorted(int(e.subject_id or 0) for e in entries) == sorted(a.id for a in closed)
    assert {e.actor_kind for e in entries} == {"staff"}

    # The day passes: nobody is marked missed for a hall that did not open.
    assert service.mark_missed(session, rules=RULES, now=local(2026, 10, 8, 18, 0)) == 0


def test_shorter_hours_cancel_only_the_appointments_outside_them_and_stop_offering_those_slots(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    manager: dict[str, str],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    a, _ = hall.categories
    morning = create_slot(a, local(2026, 10, 8, 9, 0))
    afternoon = create_slot(a, local(2026, 10, 8, 14, 0))
    late = create_slot(a, local(2026, 10, 8, 15, 0))
    in_morning = _book(session, morning, create_user())
    in_afternoon = _book(session, afternoon, create_user())

    response = client.put(
        f"/api/v1/halls/{hall.id}/special-days/{DAY}",
        json={"closed": False, "opens_at": "09:00", "closes_at": "12:00"},
        headers=manager,
    )

    assert response.status_code == 200, response.json
    session.refresh(in_morning)
    session.refresh(in_afternoon)
    assert in_morning.status == AppointmentStatus.BOOKED
    assert in_afternoon.status == AppointmentStatus.CANCELLED
    assert _messages(session, in_afternoon)["appointment_cancelled"].data["thing4"] == (
        "大厅调整了办公时间"
    )
    listed = client.get(f"/api/v1/halls/{hall.id}/appointment-slots?day={DAY}")
    assert [s["id"] for s in listed.json["items"]] == [morning.id]
    refused = client.post(
        "/api/v1/me/appointments", json={"slot_id": late.id}, headers=citizen_headers(create_user())
    )
    assert refused.status_code == 422 and refused.json["code"] == "SLOT_NOT_BOOKABLE"


def test_reopening_the_day_offers_its_slots_again_with_their_places(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    manager: dict[str, str],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=2)
    _book(session, slot, create_user())
    url = f"/api/v1/halls/{hall.id}/special-days/{DAY}"
    assert client.put(url, json={"closed": True}, headers=manager).status_code == 200
    assert client.get(f"/api/v1/halls/{hall.id}/appointment-slots?day={DAY}").json["items"] == []

    assert client.delete(url, headers=manager).status_code == 200

    (listed,) = client.get(f"/api/v1/halls/{hall.id}/appointment-slots?day={DAY}").json["items"]
    assert listed["id"] == slot.id and listed["remaining"] == 2


def test_weekly_hours_without_the_afternoon_cancel_the_afternoon_appointments(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    manager: dict[str, str],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    a, _ = hall.categories
    in_morning = _book(session, create_slot(a, local(2026, 10, 8, 9, 0)), create_user())
    in_afternoon = _book(session, create_slot(a, local(2026, 10, 9, 14, 0)), create_user())
    mornings = [{"weekday": d, "opens_at": "09:00", "closes_at": "12:00"} for d in range(5)]

    response = client.put(
        f"/api/v1/halls/{hall.id}/hours", json={"intervals": mornings}, headers=manager
    )

    assert response.status_code == 200, response.json
    session.refresh(in_morning)
    session.refresh(in_afternoon)
    assert in_morning.status == AppointmentStatus.BOOKED
    assert in_afternoon.status == AppointmentStatus.CANCELLED


def test_a_hall_that_stops_opening_on_public_holidays_cancels_the_holiday_appointments(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    manager: dict[str, str],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    create_appointment: Callable[..., Appointment],
) -> None:
    # 2026-10-05, a Monday of the National Day holiday: booked while the hall opened on holidays.
    slot = create_slot(hall.categories[0], local(2026, 10, 5, 9, 0))
    on_holiday = create_appointment(create_user(), slot, booked_at=NOW)
    assert (
        client.put(
            f"/api/v1/halls/{hall.id}/profile",
            json={"open_on_public_holidays": True},
            headers=manager,
        ).status_code
        == 200
    )
    session.refresh(on_holiday)
    assert on_holiday.status == AppointmentStatus.BOOKED

    response = client.put(
        f"/api/v1/halls/{hall.id}/profile", json={"open_on_public_holidays": False}, headers=manager
    )

    assert response.status_code == 200, response.json
    session.refresh(on_holiday)
    assert on_holiday.status == AppointmentStatus.CANCELLED


def test_stopping_a_category_cancels_its_appointments_and_tells_the_citizens(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    manager: dict[str, str],
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
) -> None:
    """Check-in refuses a stopped category (该业务暂停取号), so a booking left in place could
    only end as a miss."""
    a, b = hall.categories
    in_a = _book(session, create_slot(a, local(2026, 10, 8, 9, 0)), create_user())
    in_b = _book(session, create_slot(b, local(2026, 10, 8, 9, 0)), create_user())

    response = client.patch(
        f"/api/v1/halls/categories/{b.id}", json={"active": False}, headers=manager
    )

    assert response.status_code == 200, response.json
    session.refresh(in_a)
    session.refresh(in_b)
    assert in_a.status == AppointmentStatus.BOOKED
    assert in_b.status == AppointmentStatus.CANCELLED
    assert _messages(session, in_b)["appointment_cancelled"].data["thing4"] == "该业务暂停办理"
    # The day passes: only the citizen who did not come to the open category missed.
    assert service.mark_missed(session, rules=RULES, now=local(2026, 10, 8, 18, 0)) == 1
    session.refresh(in_b)
    assert in_b.status == AppointmentStatus.CANCELLED

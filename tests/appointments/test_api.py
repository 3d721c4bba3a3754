"""The appointment endpoints: status codes, JSON shapes, Idempotency-Key, scopes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.appointments.models import Appointment, AppointmentSlot
from app.identity.models import StaffRole, User
from app.queueing import codes
from app.queueing.settings import from_config
from tests.factories.appointments import HallSetup, local

NOW = local(2026, 9, 30, 10, 0)


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("blueprints.appointments.routes.utcnow", lambda: NOW)


@pytest.fixture
def hall(appointment_hall: Callable[..., HallSetup]) -> HallSetup:
    return appointment_hall()


def test_slots_are_listed_with_remaining_places(
    client: FlaskClient, hall: HallSetup, create_slot: Callable[..., AppointmentSlot]
) -> None:
    a, b = hall.categories
    create_slot(a, local(2026, 10, 8, 9, 0), capacity=3, booked=1)
    create_slot(b, local(2026, 10, 8, 9, 0))
    create_slot(a, local(2026, 9, 30, 9, 30))  # started already

    response = client.get(f"/api/v1/halls/{hall.id}/appointment-slots?category_id={a.id}")

    assert response.status_code == 200
    (slot,) = response.json["items"]
    assert slot["remaining"] == 2 and slot["capacity"] == 3
    assert slot["day"] == "2026-10-08"
    assert slot["starts_at"] == "2026-10-08T09:00:00+08:00"  # Beijing time, with its offset


def test_booking_with_an_idempotency_key_twice_gives_one_appointment(
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    headers = citizen_headers(create_user()) | {"Idempotency-Key": "book-8f2c"}

    first = client.post("/api/v1/me/appointments", json={"slot_id": slot.id}, headers=headers)
    again = client.post("/api/v1/me/appointments", json={"slot_id": slot.id}, headers=headers)

    assert first.status_code == 201, first.json
    assert again.status_code == 201 and again.json["id"] == first.json["id"]
    assert first.json["status"] == "booked"
    assert first.json["ends_at"] == "2026-10-08T09:30:00+08:00"
    listed = client.get("/api/v1/me/appointments", headers=headers)
    assert [a["id"] for a in listed.json["items"]] == [first.json["id"]]


def test_a_malformed_idempotency_key_is_refused(
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0))
    headers = citizen_headers(create_user()) | {"Idempotency-Key": "x" * 65}

    response = client.post("/api/v1/me/appointments", json={"slot_id": slot.id}, headers=headers)

    assert response.status_code == 422
    assert response.json["code"] == "VALIDATION_FAILED"


def test_booking_refusals_have_their_own_codes(
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    full = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=1, booked=1)
    open_ = create_slot(hall.categories[1], local(2026, 10, 8, 9, 0))
    later = create_slot(hall.categories[1], local(2026, 10, 8, 10, 0))
    headers = citizen_headers(create_user())

    def book(slot_id: int) -> tuple[int, str | None]:
        response = client.post(
            "/api/v1/me/appointments", json={"slot_id": slot_id}, headers=headers
        )
        return response.status_code, (response.json or {}).get("code")

    assert book(full.id) == (409, "SLOT_FULL")
    assert book(999_999) == (404, "SLOT_NOT_FOUND")
    assert book(open_.id)[0] == 201
    assert book(later.id) == (409, "ALREADY_BOOKED")
    response = client.post(
        "/api/v1/me/appointments", json={"slot_id": open_.id, "extra": 1}, headers=headers
    )
    assert response.status_code == 422


def test_a_citizen_cancels_their_own_appointment_only(
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    owner, stranger = create_user(), create_user()
    appointment = create_appointment(owner, create_slot(hall.categories[0], local(2026, 10, 8, 9)))

    refused = client.post(
        f"/api/v1/me/appointments/{appointment.id}/cancel", headers=citizen_headers(stranger)
    )
    done = client.post(
        f"/api/v1/me/appointments/{appointment.id}/cancel", headers=citizen_headers(owner)
    )

    assert refused.status_code == 404 and refused.json["code"] == "APPOINTMENT_NOT_FOUND"
    assert done.status_code == 200 and done.json["status"] == "cancelled"


def test_check_in_by_hall_code_returns_the_priority_ticket(
    app: Flask,
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    user = create_user()
    appointment = create_appointment(
        user, create_slot(hall.categories[1], local(2026, 9, 30, 10, 15))
    )
    token, _ = codes.dynamic_token(from_config(app.config), hall.id, NOW)

    response = client.post(
        f"/api/v1/me/appointments/{appointment.id}/check-in",
        json={"code": token},
        headers=citizen_headers(user),
    )

    assert response.status_code == 200, response.json
    assert response.json["appointment"]["status"] == "checked_in"
    assert response.json["ticket"]["display"] == "B001"
    assert response.json["ticket"]["priority"] == 2


def test_a_forged_hall_code_is_refused(
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    user = create_user()
    appointment = create_appointment(
        user, create_slot(hall.categories[1], local(2026, 9, 30, 10, 15))
    )

    response = client.post(
        f"/api/v1/me/appointments/{appointment.id}/check-in",
        json={"code": "Dk0.1.abc.forged"},
        headers=citizen_headers(user),
    )

    assert response.status_code == 422
    assert response.json["code"] == "CODE_FORGED"


def test_terminal_check_in_is_scoped_to_the_clerks_hall(
    app: Flask,
    client: FlaskClient,
    hall: HallSetup,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_user: Callable[..., User],
    create_staff: Callable[..., object],
    staff_headers: Callable[[object], dict[str, str]],
) -> None:
    user = create_user()
    create_appointment(user, create_slot(hall.categories[0], local(2026, 9, 30, 10, 15)))
    settings = from_config(app.config)
    other = appointment_hall()
    outsider = create_staff(grants=[(StaffRole.WINDOW_CLERK, other.id, None)])
    clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, hall.id, None)])

    def scan(staff: object) -> tuple[int, dict]:  # type: ignore[type-arg]
        token, _ = codes.personal_token(settings, user.id, NOW)
        response = client.post(
            "/api/v1/terminal/appointments/check-in",
            json={"code": token, "hall_id": hall.id},
            headers=staff_headers(staff),
        )
        return response.status_code, response.json

    status, body = scan(outsider)
    assert status == 403
    status, body = scan(clerk)
    assert status == 200, body
    assert body["ticket"]["display"] == "A001"


def test_the_hall_sees_its_appointments_with_masked_names(
    client: FlaskClient,
    hall: HallSetup,
    create_slot: Callable[..., AppointmentSlot],
    create_appointment: Callable[..., Appointment],
    create_verified_user: Callable[..., User],
    create_staff: Callable[..., object],
    staff_headers: Callable[[object], dict[str, str]],
) -> None:
    user = create_verified_user(name="李小明")
    create_appointment(user, create_slot(hall.categories[0], local(2026, 9, 30, 14, 0)))
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, hall.id, None)])

    response = client.get(f"/api/v1/halls/{hall.id}/appointments", headers=staff_headers(manager))

    assert response.status_code == 200, response.json
    assert response.json["day"] == "2026-09-30"
    assert response.json["counts"]["booked"] == 1
    (row,) = response.json["items"]
    assert row["citizen_name"] == "*小明"  # masked as the foundation masks names


def test_a_manager_changes_a_slots_capacity(
    client: FlaskClient,
    hall: HallSetup,
    appointment_hall: Callable[..., HallSetup],
    create_slot: Callable[..., AppointmentSlot],
    create_staff: Callable[..., object],
    staff_headers: Callable[[object], dict[str, str]],
) -> None:
    slot = create_slot(hall.categories[0], local(2026, 10, 8, 9, 0), capacity=4, booked=2)
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, hall.id, None)])
    other = create_staff(grants=[(StaffRole.HALL_MANAGER, appointment_hall().id, None)])

    path = f"/api/v1/appointment-slots/{slot.id}"
    assert client.patch(path, json={"capacity": 6}, headers=staff_headers(other)).status_code == 403
    ok = client.patch(path, json={"capacity": 6}, headers=staff_headers(manager))
    low = client.patch(path, json={"capacity": 1}, headers=staff_headers(manager))

    assert ok.status_code == 200 and ok.json["capacity"] == 6
    assert low.status_code == 409 and low.json["code"] == "CAPACITY_BELOW_BOOKED"
    assert low.json["details"] == {"booked": 2}

"""红棉码 at the window (无感取号): the terminal scans the city's personal code, the city
service names the person, and the number goes to their 禺好办 account or, without one, is
issued as a walk-in's."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.identity.models import StaffRole
from app.integrations.verification import get_verification
from app.queueing.models import CityCodeUse, Ticket
from tests.factories.identity import id_number_for


@pytest.fixture
def city(app):
    """The in-process emulator standing in for the city's code service."""
    emulator = get_verification(app).emulator
    assert emulator is not None
    return emulator


@pytest.fixture
def terminal(client, create_queue_hall, create_staff, staff_headers):
    qh = create_queue_hall()
    clerk = staff_headers(create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)]))
    window = qh.windows[1].id

    def post(action: str, **body):
        return client.post(f"/api/v1/terminal/windows/{window}/{action}", json=body, headers=clerk)

    post.hall = qh  # type: ignore[attr-defined]
    return post


def test_a_registered_citizens_city_code_takes_a_number_on_their_account(
    session, terminal, city, create_verified_user
):
    number = id_number_for(order=811)
    citizen = create_verified_user(name="李小明", id_number=number)
    code = city.city_code("李小明", number)
    category = terminal.hall.categories["A"].id

    card = terminal("identify", code=code)
    taken = terminal("take", code=code, category_id=category)
    again = terminal("take", code=code, category_id=terminal.hall.categories["B"].id)

    assert card.status_code == 200, card.json
    assert card.json["via"] == "city_code" and card.json["user_id"] == citizen.id
    assert card.json["name"] == "*小明" and "*" in card.json["id_number"]
    assert taken.status_code == 201, taken.json
    assert session.get(Ticket, taken.json["id"]).user_id == citizen.id
    assert again.status_code == 409 and again.json["code"] == "CODE_REPLAYED"
    use = session.scalars(select(CityCodeUse)).one()
    assert use.user_id == citizen.id and use.action == "take"
    assert number not in use.serial  # only the city's serial is kept


def test_a_walk_in_without_an_account_gets_an_anonymous_number(session, terminal, city):
    number = id_number_for(dt.date(1950, 3, 1), order=812)  # 76 years old: the green channel
    code = city.city_code("陈阿婆", number)

    card = terminal("identify", code=code)
    taken = terminal("take", code=code, category_id=terminal.hall.categories["A"].id)

    assert card.status_code == 200
    assert card.json["user_id"] is None and card.json["via"] == "city_code"
    assert (
        card.json["name"] == "*阿婆"
        and card.json["id_number"] == number[:4] + "*" * 10 + number[-4:]
    )
    assert card.json["green_reason"] == "elderly" and card.json["tickets"] == []
    assert taken.status_code == 201
    ticket = session.get(Ticket, taken.json["id"])
    assert ticket.user_id is None
    assert ticket.green_reason == "elderly"  # the city vouched for the birth date
    refused = terminal("green-channel", code=city.city_code("陈阿婆", number), note="残疾证")
    assert refused.status_code == 422 and refused.json["code"] == "CITIZEN_NOT_REGISTERED"


def test_expired_unknown_and_unreachable_city_codes_are_clear_errors(terminal, city):
    category = terminal.hall.categories["A"].id
    code = city.city_code("王五", id_number_for(order=813))
    original = city.clock
    city.clock = lambda: original() + 120
    try:
        expired = terminal("take", code=code, category_id=category)
    finally:
        city.clock = original
    unknown = terminal("take", code="HMM1" + "0" * 32, category_id=category)
    city.inject_fault("/v1/citycode/resolve", status=503)
    down = terminal(
        "take", code=city.city_code("王五", id_number_for(order=813)), category_id=category
    )

    assert expired.status_code == 422 and expired.json["code"] == "CODE_EXPIRED"
    assert unknown.status_code == 422 and unknown.json["code"] == "CODE_FORGED"
    assert down.status_code == 503 and down.json["code"] == "CITY_CODE_UNAVAILABLE"


def test_a_district_not_linked_to_the_city_reads_only_its_own_codes(
    app, terminal, city, monkeypatch
):
    services = get_verification(app)
    monkeypatch.setitem(
        app.extensions, "verification", type(services)(**{**services.__dict__, "city_code": None})
    )
    refused = terminal("identify", code=city.city_code("王五", id_number_for(order=814)))
    assert refused.status_code == 422 and refused.json["code"] == "CITY_CODE_NOT_LINKED"

"""The queue API: citizens take numbers by scanning; clerks call them at their windows."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from app.db import utcnow
from app.identity.access_tokens import issue_access_token
from app.identity.models import StaffRole
from app.identity.principals import citizen_principal
from app.queueing import codes
from app.queueing.demo import HALL_LAT, HALL_LNG
from app.queueing.models import Ticket, TicketCounter
from tests.factories.identity import app_token_settings

HERE = {"latitude": HALL_LAT, "longitude": HALL_LNG}


def _printed(session, qh, queue_settings) -> str:
    return codes.printed_token(
        queue_settings,
        codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None),
    )


def test_citizen_scans_takes_and_sees_position(
    client, session, create_queue_hall, create_user, citizen_headers, queue_settings
):
    # One window for category A: the first person goes straight to it, I wait one service.
    qh = create_queue_hall(windows=[(2, "A"), (3, "B")], typical_minutes=10)
    token = _printed(session, qh, queue_settings)
    first = create_user()
    me = create_user()
    h1, h2 = citizen_headers(first), citizen_headers(me)
    scan = client.post("/api/v1/queue/scan", json={"code": token, **HERE}, headers=h2)
    assert scan.status_code == 200 and [c["prefix"] for c in scan.json["categories"]] == ["A", "B"]
    a = qh.categories["A"].id
    assert (
        client.post(
            "/api/v1/queue/tickets", json={"code": token, "category_id": a, **HERE}, headers=h1
        ).status_code
        == 201
    )
    body = {"code": token, "category_id": a, **HERE}
    taken = client.post(
        "/api/v1/queue/tickets", json=body, headers={**h2, "Idempotency-Key": "abc-1"}
    )
    assert taken.status_code == 201 and taken.json["display"] == "A002"
    assert taken.json["ahead"] == 1 and taken.json["estimated_wait_minutes"] == 10
    again = client.post(
        "/api/v1/queue/tickets", json=body, headers={**h2, "Idempotency-Key": "abc-1"}
    )
    assert again.status_code == 201 and again.json["id"] == taken.json["id"]
    holding = client.post("/api/v1/queue/tickets", json=body, headers=h2)
    assert holding.status_code == 409 and holding.json["code"] == "ALREADY_HOLDING_TICKET"
    assert holding.json["details"]["ticket"]["display"] == "A002"
    mine = client.get("/api/v1/queue/tickets", headers=h2)
    assert [t["display"] for t in mine.json["items"]] == ["A002"]
    cancelled = client.post(f"/api/v1/queue/tickets/{taken.json['id']}/cancel", headers=h2)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    twice = client.post(f"/api/v1/queue/tickets/{taken.json['id']}/cancel", headers=h2)
    assert twice.status_code == 409 and twice.json["code"] == "ILLEGAL_TRANSITION"
    other = client.get(f"/api/v1/queue/tickets/{taken.json['id']}", headers=h1)
    assert other.status_code == 404


def test_take_refusals_have_their_own_codes(
    client, session, create_queue_hall, create_user, citizen_headers, queue_settings
):
    qh, elsewhere = create_queue_hall(), create_queue_hall()
    token = _printed(session, qh, queue_settings)
    h = citizen_headers(create_user())
    far = client.post(
        "/api/v1/queue/tickets",
        json={
            "code": token,
            "category_id": qh.categories["A"].id,
            "latitude": HALL_LAT + 0.1,
            "longitude": HALL_LNG,
        },
        headers=h,
    )
    assert far.status_code == 403 and far.json["code"] == "LOCATION_TOO_FAR"
    wrong = client.post(
        "/api/v1/queue/tickets",
        json={"code": token, "category_id": elsewhere.categories["A"].id, **HERE},
        headers=h,
    )
    assert wrong.status_code == 422 and wrong.json["code"] == "CODE_WRONG_HALL"
    forged = client.post(
        "/api/v1/queue/tickets",
        json={"code": token[:-2] + "xx", "category_id": qh.categories["A"].id, **HERE},
        headers=h,
    )
    assert forged.status_code == 422 and forged.json["code"] == "CODE_FORGED"
    unknown = client.post(
        "/api/v1/queue/tickets",
        json={"code": token, "category_id": 1, "extra": 1, **HERE},
        headers=h,
    )
    assert unknown.status_code == 422


def test_dynamic_code_from_the_screen_needs_no_location(
    client, create_queue_hall, create_user, citizen_headers, create_staff, staff_headers
):
    qh = create_queue_hall()
    screen = create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)])
    shown = client.get(
        f"/api/v1/screen/halls/{qh.hall.id}/dynamic-code", headers=staff_headers(screen)
    )
    assert shown.status_code == 200 and "<svg" in shown.json["svg"]
    taken = client.post(
        "/api/v1/queue/tickets",
        json={"code": shown.json["code"], "category_id": qh.categories["B"].id},
        headers=citizen_headers(create_user()),
    )
    assert taken.status_code == 201 and taken.json["source"] == "dynamic_code"
    citizen = client.get(
        f"/api/v1/screen/halls/{qh.hall.id}/dynamic-code",
        headers=citizen_headers(create_user()),
    )
    assert citizen.status_code == 403


def test_terminal_flow_and_scope(
    client,
    session,
    create_queue_hall,
    create_verified_user,
    citizen_headers,
    create_staff,
    staff_headers,
):
    qh, other = create_queue_hall(), create_queue_hall()
    clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)])
    h = staff_headers(clerk)
    window = qh.windows[1].id
    foreign = client.post(f"/api/v1/terminal/windows/{other.windows[1].id}/call-next", headers=h)
    assert foreign.status_code == 403 and foreign.json["code"] == "WINDOW_NOT_IN_HALL"
    citizen = create_verified_user(name="李小明")
    code = client.get("/api/v1/queue/personal-code", headers=citizen_headers(citizen)).json["code"]
    card = client.post(
        f"/api/v1/terminal/windows/{window}/identify", json={"code": code}, headers=h
    )
    assert card.status_code == 200 and card.json["name"] == "*小明"
    take = client.post(
        f"/api/v1/terminal/windows/{window}/take",
        json={"code": code, "category_id": qh.categories["A"].id},
        headers=h,
    )
    assert take.status_code == 201 and take.json["source"] == "terminal"
    replay = client.post(
        f"/api/v1/terminal/windows/{window}/take",
        json={"code": code, "category_id": qh.categories["B"].id},
        headers=h,
    )
    assert replay.status_code == 409 and replay.json["code"] == "CODE_REPLAYED"
    called = client.post(f"/api/v1/terminal/windows/{window}/call-next", headers=h)
    assert (
        called.status_code == 200
        and called.json["display"] == "A001"
        and called.json["window_number"] == 1
    )
    busy = client.post(f"/api/v1/terminal/windows/{window}/call-next", headers=h)
    assert busy.status_code == 409 and busy.json["code"] == "WINDOW_BUSY"
    tid = called.json["id"]
    serve = client.post(
        f"/api/v1/terminal/windows/{window}/tickets/{tid}/serve", json={}, headers=h
    )
    assert serve.status_code == 200
    double = client.post(
        f"/api/v1/terminal/windows/{window}/tickets/{tid}/serve", json={}, headers=h
    )
    assert double.status_code == 409 and double.json["code"] == "ILLEGAL_TRANSITION"
    finish = client.post(
        f"/api/v1/terminal/windows/{window}/tickets/{tid}/finish",
        json={"matter": "社保卡补办"},
        headers=h,
    )
    assert finish.status_code == 200 and finish.json["status"] == "done"
    assert (called.json["hall_name"], called.json["category_name"]) == (qh.hall.name, "综合业务")
    assert called.json["window_name"] == "1号窗口"
    board = client.get(f"/api/v1/screen/halls/{qh.hall.id}/board")
    assert board.status_code == 200 and board.json["windows"][0]["number"] == 1
    assert board.json["hall_name"] == qh.hall.name
    (last_call,) = board.json["recent_calls"]
    assert last_call["display"] == "A001" and last_call["text"] == "请A001号到1号窗口办理"
    assert last_call["at"].endswith("+08:00")
    closed = client.post(
        f"/api/v1/terminal/windows/{window}/status", json={"status": "closed"}, headers=h
    )
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    not_open = client.post(f"/api/v1/terminal/windows/{window}/call-next", headers=h)
    assert not_open.status_code == 409 and not_open.json["code"] == "WINDOW_NOT_OPEN"


def test_the_green_channel_flag_is_recorded_once_and_audited(
    client, session, create_queue_hall, create_verified_user, citizen_headers, create_staff,
    staff_headers,
):  # fmt: skip
    from sqlalchemy import select

    from app.audit.models import AuditEntry
    from app.queueing.models import GreenChannelFlag

    qh = create_queue_hall()
    clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)])
    citizen = create_verified_user(name="王芳")
    url = f"/api/v1/terminal/windows/{qh.windows[1].id}/green-channel"

    for _ in range(2):
        code = client.get("/api/v1/queue/personal-code", headers=citizen_headers(citizen)).json[
            "code"
        ]
        flagged = client.post(
            url, json={"code": code, "note": "残疾证 44011319*****"}, headers=staff_headers(clerk)
        )
        assert flagged.status_code == 200, flagged.json

    assert session.get(GreenChannelFlag, citizen.id).recorded_by == clerk.id
    [entry] = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "queue.green_channel_recorded")
    ).all()
    assert (entry.actor_kind, entry.actor_id) == ("staff", clerk.id)
    assert (entry.subject_type, entry.subject_id) == ("user", str(citizen.id))
    assert entry.details == {"hall_id": qh.hall.id, "window_id": qh.windows[1].id}


def test_a_resent_call_next_answers_the_first_call_and_calls_no_one_else(
    client, session, create_queue_hall, create_user, take_ticket, create_staff, staff_headers
):
    # The balancer resends a call-next whose answer it lost (HAProxy retry-on), and a clerk's
    # terminal resends on a flaky network: the same key must not call the next citizen too.
    qh = create_queue_hall()
    first, second = (take_ticket(create_user(), qh.categories["A"]) for _ in range(2))
    session.commit()
    clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)])
    url = f"/api/v1/terminal/windows/{qh.windows[1].id}/call-next"
    keyed = {**staff_headers(clerk), "Idempotency-Key": "call-7f3a"}

    called = client.post(url, headers=keyed)
    resent = client.post(url, headers=keyed)

    assert called.status_code == 200 and called.json["id"] == first.id
    assert resent.status_code == 200 and resent.json["id"] == first.id
    assert resent.json["status"] == "called"
    session.expire_all()
    assert session.get(type(second), second.id).status == "waiting"
    # A new click is a new key: the counter is still busy with the first citizen.
    again = client.post(url, headers={**staff_headers(clerk), "Idempotency-Key": "call-8b21"})
    assert again.status_code == 409 and again.json["code"] == "WINDOW_BUSY"
    malformed = client.post(url, headers={**staff_headers(clerk), "Idempotency-Key": "空 格"})
    assert malformed.status_code == 422


def test_a_logged_out_citizens_token_takes_no_number_whatever_the_body(
    client, session, create_queue_hall, create_user, citizen_headers, queue_settings
):
    """The take asks about the login family in its own read (`citizen_required_family_in_view`):
    a revoked family is refused before the code, the category or anything else is looked at,
    and nothing is written."""
    qh = create_queue_hall()
    token = _printed(session, qh, queue_settings)
    h = citizen_headers(create_user())
    a = qh.categories["A"].id
    assert client.post("/api/v1/auth/logout", headers=h).status_code == 204
    bodies = {
        "valid": {"code": token, "category_id": a, **HERE},
        "unknown category": {"code": token, "category_id": 987654, **HERE},
        "forged code": {"code": token[:-2] + "xx", "category_id": a, **HERE},
        "far away": {
            "code": token,
            "category_id": a,
            "latitude": HALL_LAT + 0.1,
            "longitude": HALL_LNG,
        },
    }
    for name, body in bodies.items():
        key = "k-" + name.replace(" ", "-")
        refused = client.post(
            "/api/v1/queue/tickets", json=body, headers={**h, "Idempotency-Key": key}
        )
        assert refused.status_code == 401, (name, refused.json)
        assert refused.json["code"] == "TOKEN_INVALID", name
    assert session.scalars(select(Ticket)).all() == []
    assert session.scalars(select(TicketCounter)).all() == []


def test_a_token_of_a_family_that_never_existed_takes_no_number(
    app, client, session, create_queue_hall, create_user, queue_settings
):
    qh = create_queue_hall()
    user = create_user()
    forged_family = dataclasses.replace(citizen_principal(user), family_id="0" * 32)
    access, _ = issue_access_token(app_token_settings(app), forged_family, now=utcnow())
    taken = client.post(
        "/api/v1/queue/tickets",
        json={
            "code": _printed(session, qh, queue_settings),
            "category_id": qh.categories["A"].id,
            **HERE,
        },
        headers={"Authorization": f"Bearer {access}"},
    )
    assert taken.status_code == 401 and taken.json["code"] == "TOKEN_INVALID"
    assert session.scalars(select(Ticket)).all() == []

"""The entrance screen shows the rotating code with its own revocable token, not a clerk's."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity.models import StaffRole
from app.queueing import displays
from app.queueing.models import HallDisplay


def _code_url(hall_id: int) -> str:
    return f"/api/v1/screen/halls/{hall_id}/dynamic-code"


def _display(token: str) -> dict[str, str]:
    return {"Authorization": f"Display {token}"}


def _register(client, hall_id: int, manager: dict[str, str], name: str = "一楼入口屏"):
    response = client.post(
        f"/api/v1/halls/{hall_id}/displays", json={"name": name}, headers=manager
    )
    assert response.status_code == 201, response.json
    return response.json


def test_a_registered_screen_shows_the_entrance_code_with_its_own_token(
    client, session, create_queue_hall, create_staff, staff_headers, create_user, citizen_headers
):
    qh = create_queue_hall()
    manager_account = create_staff(grants=[(StaffRole.HALL_MANAGER, qh.hall.id, None)])
    manager = staff_headers(manager_account)
    issued = _register(client, qh.hall.id, manager)

    shown = client.get(_code_url(qh.hall.id), headers=_display(issued["token"]))

    assert shown.status_code == 200, shown.json
    assert "<svg" in shown.json["svg"]
    taken = client.post(
        "/api/v1/queue/tickets",
        json={"code": shown.json["code"], "category_id": qh.categories["A"].id},
        headers=citizen_headers(create_user()),
    )
    assert taken.status_code == 201 and taken.json["source"] == "dynamic_code"
    # The token is shown once: the list never carries it, and only its hash is stored.
    listed = client.get(f"/api/v1/halls/{qh.hall.id}/displays", headers=manager)
    assert listed.status_code == 200
    assert [item["name"] for item in listed.json["items"]] == ["一楼入口屏"]
    assert "token" not in listed.json["items"][0]
    assert listed.json["items"][0]["last_used_at"] is not None
    stored = session.get(HallDisplay, issued["id"])
    assert issued["token"] not in stored.token_hash
    audited = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "hall_display.registered")
    ).one()
    assert audited.actor_id == manager_account.id and audited.subject_id == str(issued["id"])


def test_a_screen_token_reads_only_its_own_halls_screen(
    client, create_queue_hall, create_staff, staff_headers
):
    qh, other = create_queue_hall(), create_queue_hall()
    manager = staff_headers(create_staff(grants=[(StaffRole.HALL_MANAGER, qh.hall.id, None)]))
    token = _register(client, qh.hall.id, manager)["token"]

    elsewhere = client.get(_code_url(other.hall.id), headers=_display(token))
    assert elsewhere.status_code == 403
    # Every other rule refuses a screen token: it is no login.
    for method, url in [
        ("get", f"/api/v1/halls/{qh.hall.id}/displays"),
        ("get", "/api/v1/me"),
        ("post", f"/api/v1/terminal/windows/{qh.windows[1].id}/call-next"),
    ]:
        refused = getattr(client, method)(url, headers=_display(token))
        assert refused.status_code == 403, (url, refused.json)
        assert refused.json["message"] == "大厅屏凭证只能读取大厅屏内容"


def test_a_revoked_or_unknown_token_is_refused_and_revoking_is_audited(
    client, session, create_queue_hall, create_staff, staff_headers
):
    qh = create_queue_hall()
    manager = staff_headers(create_staff(grants=[(StaffRole.HALL_MANAGER, qh.hall.id, None)]))
    issued = _register(client, qh.hall.id, manager)
    revoke = f"/api/v1/halls/{qh.hall.id}/displays/{issued['id']}/revoke"

    revoked = client.post(revoke, headers=manager)
    again = client.post(revoke, headers=manager)

    assert revoked.status_code == again.status_code == 200
    assert revoked.json["revoked_at"] == again.json["revoked_at"] is not None
    refused = client.get(_code_url(qh.hall.id), headers=_display(issued["token"]))
    assert refused.status_code == 401 and refused.json["code"] == "TOKEN_INVALID"
    forged = client.get(_code_url(qh.hall.id), headers=_display("hd_" + "x" * 43))
    assert forged.status_code == 401
    assert client.get(_code_url(qh.hall.id), headers=_display("garbage")).status_code == 401
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "hall_display.revoked")
    ).all()
    assert len(entries) == 1  # revoking twice changes nothing the second time
    missing = client.post(f"/api/v1/halls/{qh.hall.id}/displays/999999/revoke", headers=manager)
    assert missing.status_code == 404 and missing.json["code"] == "HALL_DISPLAY_NOT_FOUND"


def test_only_the_halls_managers_register_screens_and_clerks_still_read_the_code(
    client, create_queue_hall, create_staff, staff_headers, create_user, citizen_headers
):
    qh, other = create_queue_hall(), create_queue_hall()
    clerk = staff_headers(create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)]))
    other_manager = staff_headers(
        create_staff(grants=[(StaffRole.HALL_MANAGER, other.hall.id, None)])
    )
    url = f"/api/v1/halls/{qh.hall.id}/displays"

    assert client.post(url, json={"name": "屏"}, headers=clerk).status_code == 403
    assert client.post(url, json={"name": "屏"}, headers=other_manager).status_code == 403
    assert client.post(url, json={"name": "屏"}).status_code == 401
    assert client.get(_code_url(qh.hall.id), headers=clerk).status_code == 200
    citizen = citizen_headers(create_user())
    assert client.get(_code_url(qh.hall.id), headers=citizen).status_code == 403
    assert client.get(_code_url(qh.hall.id)).status_code == 401


def test_use_is_noted_at_most_every_few_minutes(session, create_queue_hall):
    qh = create_queue_hall()
    start = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)
    issued = displays.register(session, qh.hall.id, name="屏", staff_id=None, now=start)

    for minutes in (0, 1, 4):
        displays.authenticate(session, issued.token, now=start + dt.timedelta(minutes=minutes))
    session.refresh(issued.display)
    assert issued.display.last_used_at == start
    displays.authenticate(session, issued.token, now=start + dt.timedelta(minutes=6))
    session.refresh(issued.display)
    assert issued.display.last_used_at == start + dt.timedelta(minutes=6)

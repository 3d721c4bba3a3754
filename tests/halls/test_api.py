"""The hall set-up API: public details; managers edit only their own hall."""

from __future__ import annotations

from app.identity.models import StaffRole


def test_manager_sets_up_categories_windows_and_hours(
    client, create_hall, create_staff, staff_headers
):
    hall = create_hall()
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, hall.id, None)])
    h = staff_headers(manager)
    base = f"/api/v1/halls/{hall.id}"
    r = client.put(
        f"{base}/profile",
        json={"address": "番禺区市桥街清河东路", "latitude": 22.94, "longitude": 113.38},
        headers=h,
    )
    assert r.status_code == 200 and r.json["address"].startswith("番禺区")
    r = client.put(
        f"{base}/hours",
        json={
            "intervals": [
                {"weekday": d, "opens_at": "09:00", "closes_at": "17:00"} for d in range(5)
            ]
        },
        headers=h,
    )
    assert r.status_code == 200 and len(r.json["weekly_hours"]) == 5
    a = client.post(
        f"{base}/categories",
        json={
            "name": "综合业务",
            "prefix": "A",
            "daily_cap": 200,
            "typical_minutes": 8,
            "matters": ["社保卡补办"],
        },
        headers=h,
    )
    assert a.status_code == 201
    dup = client.post(f"{base}/categories", json={"name": "其他", "prefix": "A"}, headers=h)
    assert dup.status_code == 409 and dup.json["code"] == "HALL_CONFLICT"
    w = client.post(
        f"{base}/windows", json={"number": 1, "category_ids": [a.json["id"]]}, headers=h
    )
    assert w.status_code == 201 and w.json["category_ids"] == [a.json["id"]]
    detail = client.get(base)
    assert detail.status_code == 200 and detail.json["categories"][0]["prefix"] == "A"
    assert detail.json["windows"][0]["number"] == 1


def test_manager_of_another_hall_is_refused(client, create_hall, create_staff, staff_headers):
    mine, other = create_hall(), create_hall()
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, mine.id, None)])
    r = client.post(
        f"/api/v1/halls/{other.id}/categories",
        json={"name": "综合业务", "prefix": "A"},
        headers=staff_headers(manager),
    )
    assert r.status_code == 403


def test_printed_code_issue_render_and_revoke(client, create_hall, create_staff, staff_headers):
    hall = create_hall()
    h = staff_headers(create_staff(grants=[(StaffRole.HALL_MANAGER, hall.id, None)]))
    code = client.post(f"/api/v1/halls/{hall.id}/codes", json={"label": "正门"}, headers=h)
    assert code.status_code == 201 and len(code.json["token"]) <= 32
    png = client.get(f"/api/v1/halls/{hall.id}/codes/{code.json['id']}/qr.png", headers=h)
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    svg = client.get(f"/api/v1/halls/{hall.id}/codes/{code.json['id']}/qr.svg", headers=h)
    assert svg.status_code == 200 and b"<svg" in svg.data
    revoked = client.post(f"/api/v1/halls/{hall.id}/codes/{code.json['id']}/revoke", headers=h)
    assert (
        revoked.status_code == 200 and revoked.json["revoked_at"] and revoked.json["token"] is None
    )

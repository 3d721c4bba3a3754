"""The hall dashboard and the district view in the browser: the day's figures are the queue
statistics' own, the charts and the CSV render, a bad rating's follow-up is closed (its note
required beside the field); another hall's manager and a hall-scoped manager's district view
are refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.audit.service import Actor
from app.calendar import local_day
from app.db import get_session, utcnow
from app.halls.models import ServiceCategory, Window
from app.identity.models import StaffRole
from app.identity.staff import create_staff, find_by_username
from app.organisation.models import Hall
from app.queue_stats import service as stats
from app.queue_stats.service import GroupBy
from app.queueing import codes
from app.queueing.demo import HALL_LAT, HALL_LNG, ROUND_THE_CLOCK_HALL
from app.queueing.settings import from_config as queue_settings
from tests.console.conftest import DEMO_PASSWORD, LiveConsole, login, look_at

MANAGER = "manager.console-demo"


def _demo_hall(live: LiveConsole) -> dict[str, Any]:
    """The round-the-clock demo hall, its category A, window 2 (A only), and its manager."""
    with live.app.app_context():
        session = get_session()
        hall = session.scalars(select(Hall).where(Hall.code == ROUND_THE_CLOCK_HALL[0])).one()
        category = session.scalars(
            select(ServiceCategory).where(
                ServiceCategory.hall_id == hall.id, ServiceCategory.prefix == "A"
            )
        ).one()
        window = session.scalars(
            select(Window).where(Window.hall_id == hall.id, Window.number == 2)
        ).one()
        if find_by_username(session, MANAGER) is None:
            create_staff(
                session,
                username=MANAGER,
                display_name="演示大厅主管",
                password=DEMO_PASSWORD,
                grants=[(StaffRole.HALL_MANAGER, hall.id, None)],
                actor=Actor.system(),
                now=utcnow(),
            )
            session.commit()
        printed = codes.printed_codes(session, hall.id)[0]
        return {
            "hall_id": hall.id,
            "category_id": category.id,
            "window_id": window.id,
            "code": codes.printed_token(queue_settings(live.app.config), printed),
        }


def _served_and_rated_badly(live: LiveConsole, hall: dict[str, Any]) -> int:
    """A citizen takes a number, the clerk serves it through the terminal API, and the citizen
    rates it 非常不满意: the hall gets a follow-up. Returns the ticket id."""
    _user, token = live.citizen()
    taken = live.api(
        "POST",
        "/queue/tickets",
        token,
        json={
            "code": hall["code"],
            "category_id": hall["category_id"],
            "latitude": HALL_LAT,
            "longitude": HALL_LNG,
        },
    )
    assert taken.status_code == 201, taken.text
    ticket_id = taken.json()["id"]
    staff = live.api(
        "POST", "/staff/auth/login", json={"username": "clerk.demo", "password": DEMO_PASSWORD}
    ).json()["access_token"]
    base = f"/terminal/windows/{hall['window_id']}"
    assert live.api("POST", f"{base}/status", staff, json={"status": "open"}).status_code == 200
    called = live.api("POST", f"{base}/call-next", staff)
    assert called.status_code == 200, called.text
    assert called.json()["id"] == ticket_id
    for action, body in (("serve", {}), ("finish", {"matter": "社保卡补办"})):
        done = live.api("POST", f"{base}/tickets/{ticket_id}/{action}", staff, json=body)
        assert done.status_code == 200, done.text
    rated = live.api(
        "POST",
        f"/me/tickets/{ticket_id}/rating",
        token,
        json={"level": "very_dissatisfied", "comment": "等候太久"},
    )
    assert rated.status_code == 201, rated.text
    return int(ticket_id)


def test_the_manager_sees_the_days_figures_closes_a_bad_rating_and_exports_csv(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = _demo_hall(live_console)
    _served_and_rated_badly(live_console, hall)
    page = new_page()
    login(page, live_console, MANAGER)
    page.goto(live_console.url("/console/dashboard"))
    page.wait_for_url(f"**/console/dashboard/halls/{hall['hall_id']}")
    with live_console.app.app_context():
        day = local_day(utcnow())
        whole = stats.compute(
            get_session(), hall["hall_id"], start=day, end=day, group_by=GroupBy.HALL
        )[0]
    assert int(page.locator("[data-figure='issued']").inner_text()) == whole.issued
    assert int(page.locator("[data-figure='served']").inner_text()) == whole.served >= 1
    assert int(page.locator("[data-figure='no_shows']").inner_text()) == whole.no_shows
    assert page.locator("svg.chart rect.bar").count() >= 2
    look_at(page, "dashboard-hall")

    follow_up = page.locator("[data-follow-up]").first
    follow_up.get_by_role("button", name="整改办结").click()
    assert "请填写整改措施及结果" in page.locator(".field-error").first.inner_text()
    remaining = page.locator("[data-follow-up]").count()
    page.locator("[data-follow-up] textarea").first.fill("已增开窗口并向办事人致歉回访")
    page.locator("[data-follow-up]").first.get_by_role("button", name="整改办结").click()
    page.get_by_text("差评整改已办结").wait_for()
    assert page.locator("[data-follow-up]").count() == remaining - 1

    csv = page.request.get(
        live_console.url(f"/console/dashboard/halls/{hall['hall_id']}/stats.csv")
    )
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "综合业务" in csv.text()

    wide = new_page(width=1920, height=1080)
    login(wide, live_console, MANAGER)
    wide.goto(live_console.url(f"/console/dashboard/halls/{hall['hall_id']}"))
    look_at(wide, "dashboard-hall-1920")


def test_the_district_view_lists_every_hall_for_the_admin(
    live_console: LiveConsole, new_page: Any
) -> None:
    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url("/console/dashboard"))
    page.wait_for_url("**/console/dashboard/district")
    with live_console.app.app_context():
        hall_count = len(get_session().scalars(select(Hall.id)).all())
    assert page.locator("tr[data-hall]").count() == hall_count >= 19
    look_at(page, "dashboard-district")


def test_other_halls_and_the_district_view_are_refused_to_a_hall_manager(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = _demo_hall(live_console)
    page = new_page()
    login(page, live_console, "manager.district")
    other = page.goto(live_console.url(f"/console/dashboard/halls/{hall['hall_id']}"))
    assert other is not None and other.status == 403
    district = page.goto(live_console.url("/console/dashboard/district"))
    assert district is not None and district.status == 403
    clerk = new_page()
    login(clerk, live_console, "clerk.demo")
    denied = clerk.goto(live_console.url(f"/console/dashboard/halls/{hall['hall_id']}"))
    assert denied is not None and denied.status == 403

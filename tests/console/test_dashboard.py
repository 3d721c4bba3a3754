"""The hall dashboard and the district view in the browser.

A hall of the test's own (open all day, so the test runs at any hour, and no other test's
tickets in its figures) gets a day of tickets through the queueing services: the manager's
page shows exactly those counts, which are also the statistics service's; the charts and the
CSV (the API's own) render; a citizen's bad rating opens a follow-up, closed from the page
(its note required, the error beside the field). Another hall's manager, a clerk, and a
hall-scoped manager's district view are refused.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.appointments.models import AppointmentSlot
from app.audit.service import Actor
from app.calendar import local_day, local_instant
from app.db import get_session, utcnow
from app.halls.models import Window
from app.identity.models import StaffRole
from app.identity.staff import create_staff
from app.organisation.models import Hall, HallKind
from app.queue_stats import service as stats
from app.queue_stats.service import GroupBy
from app.queueing import windows
from app.queueing.demo import setup_queue_hall
from app.queueing.errors import RecallsNotExhausted
from app.queueing.models import TicketSource
from app.queueing.settings import from_config as queue_settings
from app.queueing.taking import issue_ticket
from app.queueing.windows import WindowAction
from app.ratings.models import FollowUpStatus, RatingFollowUp
from tests.console.conftest import DEMO_PASSWORD, LiveConsole, login, look_at

_serial = itertools.count(1)

# The day the test makes, per category: issued, served, no-shows, left waiting.
MADE = {"A": (3, 2, 1, 0), "B": (2, 1, 0, 1)}
ISSUED, SERVED, NO_SHOWS, WAITING = (sum(c[i] for c in MADE.values()) for i in range(4))
SLOT_CAPACITY, SLOT_BOOKED = 10, 4


@dataclass
class HallDay:
    hall_id: int
    code: str
    name: str
    manager: str
    rated_ticket_id: int
    follow_up_id: int


def _act(
    session: Any,
    window: Window,
    ticket_id: int,
    action: WindowAction,
    actor: Actor,
    now: dt.datetime,
    settings: Any,
) -> None:
    windows.act(session, window, ticket_id, action, actor=actor, now=now, settings=settings)


def _staff(session: Any, username: str, grants: list[Any]) -> int:
    return create_staff(
        session,
        username=username,
        display_name="看板测试人员",
        password=DEMO_PASSWORD,
        grants=grants,
        actor=Actor.system(),
        now=utcnow(),
    ).id


@pytest.fixture(scope="module")
def hall_day(live_console: LiveConsole) -> HallDay:
    """A new hall with categories A and B, its manager, a clerk, and today's tickets of
    `MADE`; one served A ticket is a citizen's, rated 非常不满意 through the API."""
    user, citizen_token = live_console.citizen(name="王五")
    tag = f"{os.getpid()}-{next(_serial)}"
    app = live_console.app
    settings = queue_settings(app.config)
    with app.app_context():
        session = get_session()
        hall = Hall(code=f"DASH-{tag}", name=f"看板测试便民服务中心{tag}", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        clerk_id = _staff(session, f"clerk.dash-{tag}", [(StaffRole.WINDOW_CLERK, hall.id, None)])
        manager = f"manager.dash-{tag}"
        _staff(session, manager, [(StaffRole.HALL_MANAGER, hall.id, None)])
        setup = setup_queue_hall(
            session, hall, windows=((1, "A"), (2, "B")), clerk_id=clerk_id, typical_minutes=8
        )
        # Moments earlier today (times to show), never before the local midnight.
        now = utcnow()
        start = max(now - dt.timedelta(hours=2), local_instant(local_day(now), dt.time(0, 1)))
        clock = (start + dt.timedelta(minutes=3 * n) for n in itertools.count())
        actor = Actor("staff", clerk_id)
        rated_ticket_id = 0
        for prefix, (issued, served, no_shows, _waiting) in MADE.items():
            category = setup.categories[prefix]
            window = setup.windows[1 if prefix == "A" else 2]
            for n in range(issued):
                issue_ticket(
                    session,
                    category=category,
                    user_id=user.id if prefix == "A" and n == 0 else None,
                    source=TicketSource.HALL_CODE,
                    # As a hall code's take records it (ticket actors are at most 8 characters).
                    actor=Actor("user", user.id) if prefix == "A" and n == 0 else Actor.system(),
                    now=next(clock),
                    settings=settings,
                )
            for _ in range(served):
                called = windows.call_next(
                    session, window, actor=actor, now=next(clock), settings=settings
                )
                for action in (WindowAction("serve"), WindowAction("finish", matter="社保卡补办")):
                    _act(session, window, called.id, action, actor, next(clock), settings)
                if called.user_id == user.id:
                    rated_ticket_id = called.id
            for _ in range(no_shows):
                called = windows.call_next(
                    session, window, actor=actor, now=next(clock), settings=settings
                )
                for _recall in range(10):
                    try:
                        _act(
                            session,
                            window,
                            called.id,
                            WindowAction("no_show"),
                            actor,
                            next(clock),
                            settings,
                        )
                        break
                    except RecallsNotExhausted:
                        _act(
                            session,
                            window,
                            called.id,
                            WindowAction("recall"),
                            actor,
                            next(clock),
                            settings,
                        )
        # Today's appointment slot of A, partly booked (a fixture row: booking is for later days).
        session.add(
            AppointmentSlot(
                hall_id=hall.id,
                category_id=setup.categories["A"].id,
                day=local_day(now),
                starts_at=start,
                ends_at=start + dt.timedelta(minutes=30),
                capacity=SLOT_CAPACITY,
                booked=SLOT_BOOKED,
            )
        )
        session.commit()
        hall_id, code, name = hall.id, hall.code, hall.name
    rated = live_console.api(
        "POST",
        f"/me/tickets/{rated_ticket_id}/rating",
        citizen_token,
        json={"level": "very_dissatisfied", "comment": "等候太久，窗口态度不好"},
    )
    assert rated.status_code == 201, rated.text
    with app.app_context():
        follow_up = (
            get_session()
            .scalars(select(RatingFollowUp).where(RatingFollowUp.hall_id == hall_id))
            .one()
        )
        follow_up_id = follow_up.id
    return HallDay(hall_id, code, name, manager, rated_ticket_id, follow_up_id)


def _figure(page: Any, name: str) -> str:
    return str(page.locator(f"[data-figure='{name}']").first.inner_text()).strip()


def test_the_manager_sees_the_days_counts_charts_and_csv(
    live_console: LiveConsole, new_page: Any, hall_day: HallDay
) -> None:
    page = new_page()
    login(page, live_console, hall_day.manager)
    page.goto(live_console.url("/console/dashboard"))
    page.wait_for_url(f"**/console/dashboard/halls/{hall_day.hall_id}")

    with live_console.app.app_context():
        day = local_day(utcnow())
        whole = stats.compute(
            get_session(), hall_day.hall_id, start=day, end=day, group_by=GroupBy.HALL
        )[0]
    assert (whole.issued, whole.served, whole.no_shows) == (ISSUED, SERVED, NO_SHOWS)
    assert int(_figure(page, "issued")) == whole.issued == ISSUED
    assert int(_figure(page, "served")) == whole.served == SERVED
    assert int(_figure(page, "no_shows")) == whole.no_shows == NO_SHOWS
    assert int(_figure(page, "waiting")) == WAITING
    assert whole.wait_mean_seconds is not None
    assert _figure(page, "wait_mean") == f"{round(whole.wait_mean_seconds / 60, 1):g}"

    a_row = page.locator("tr[data-category='A 综合业务']")
    assert a_row.locator("td").nth(0).inner_text() == str(MADE["A"][0])
    assert a_row.locator(f"[data-fill='{SLOT_BOOKED}/{SLOT_CAPACITY}']").count() == 1
    assert "40%" in a_row.inner_text()
    # Two charts (wait, service), one bar per category, drawn as SVG by the server.
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    assert charts.nth(0).locator("rect.bar").count() == 2
    assert int(charts.nth(1).locator("rect.bar").first.get_attribute("width") or 0) > 0
    look_at(page, "dashboard-hall")

    csv = page.request.get(
        live_console.url(f"/console/dashboard/halls/{hall_day.hall_id}/stats.csv")
    )
    assert csv.status == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"].startswith("attachment;")
    staff = live_console.api(
        "POST",
        "/staff/auth/login",
        json={"username": hall_day.manager, "password": DEMO_PASSWORD},
    ).json()["access_token"]
    api_csv = live_console.api("GET", f"/halls/{hall_day.hall_id}/queue-stats.csv", staff)
    assert api_csv.status_code == 200
    assert csv.body() == api_csv.content  # the API's CSV, byte for byte
    assert "A 综合业务" in csv.text()

    # Another day: the statistics of that day (none), no waiting count.
    yesterday = (day - dt.timedelta(days=1)).isoformat()
    page.goto(live_console.url(f"/console/dashboard/halls/{hall_day.hall_id}?day={yesterday}"))
    assert _figure(page, "issued") == "0" and _figure(page, "waiting") == "—"
    bad = page.goto(live_console.url(f"/console/dashboard/halls/{hall_day.hall_id}?day=2026-13-45"))
    assert bad is not None and bad.status == 422
    assert "请选择有效的日期" in page.locator("#day-error").inner_text()

    wide = new_page(width=1920, height=1080)
    login(wide, live_console, hall_day.manager)
    wide.goto(live_console.url(f"/console/dashboard/halls/{hall_day.hall_id}"))
    look_at(wide, "dashboard-hall-1920")


def test_a_bad_ratings_follow_up_is_closed_with_its_required_note(
    live_console: LiveConsole, new_page: Any, hall_day: HallDay
) -> None:
    page = new_page()
    login(page, live_console, hall_day.manager)
    page.goto(live_console.url(f"/console/dashboard/halls/{hall_day.hall_id}"))
    item = page.locator(f"[data-follow-up='{hall_day.follow_up_id}']")
    assert "非常不满意" in item.inner_text()
    assert "等候太久，窗口态度不好" in item.inner_text()
    assert "*五" in item.inner_text() and "王五" not in item.inner_text()  # masked

    item.get_by_role("button", name="整改办结").click()
    error = item.locator(f"#rectification-{hall_day.follow_up_id}-error")
    assert error.inner_text() == "请填写整改措施及结果"  # beside the field, after the POST
    field = item.get_by_label("整改情况")
    assert field.get_attribute("aria-invalid") == "true"
    look_at(page, "dashboard-follow-up-error")
    field.fill("已致歉")
    item.get_by_role("button", name="整改办结").click()
    # The API schema's length rule, checked on the page; `expect` waits for the new page.
    expect(page.locator(f"#rectification-{hall_day.follow_up_id}-error")).to_have_text(
        "整改情况为 5 至 2000 字"
    )
    with live_console.app.app_context():
        still = get_session().get(RatingFollowUp, hall_day.follow_up_id)
        assert still is not None and still.status == FollowUpStatus.OPEN

    page.get_by_label("整改情况").fill("已增开 B 类窗口，并电话回访办事人致歉")
    page.get_by_role("button", name="整改办结").click()
    page.get_by_text("差评整改已办结").wait_for()
    assert page.locator("[data-follow-up]").count() == 0
    with live_console.app.app_context():
        closed = get_session().get(RatingFollowUp, hall_day.follow_up_id)
        assert closed is not None and closed.status == FollowUpStatus.CLOSED
        assert closed.rectification == "已增开 B 类窗口，并电话回访办事人致歉"


def test_the_district_view_lists_every_hall_for_the_admin(
    live_console: LiveConsole, new_page: Any, hall_day: HallDay
) -> None:
    page = new_page()
    login(page, live_console, "admin")  # the district manager (hall grants are always scoped)
    page.goto(live_console.url("/console/dashboard"))
    page.wait_for_url("**/console/dashboard/district")
    with live_console.app.app_context():
        hall_count = len(get_session().scalars(select(Hall.id)).all())
    assert page.locator("tbody tr[data-hall]").count() == hall_count >= 19
    row = page.locator(f"tr[data-hall='{hall_day.code}']")
    assert row.locator("[data-figure='issued']").inner_text() == str(ISSUED)
    assert row.locator("[data-figure='served']").inner_text() == str(SERVED)
    assert row.locator("[data-figure='waiting']").inner_text() == str(WAITING)
    assert row.locator("[data-figure='no_shows']").inner_text() == str(NO_SHOWS)
    look_at(page, "dashboard-district")
    row.get_by_role("link", name=hall_day.name).click()
    page.wait_for_url(f"**/console/dashboard/halls/{hall_day.hall_id}?day=*")
    assert int(_figure(page, "issued")) == ISSUED


def test_other_halls_and_the_district_view_are_refused(
    live_console: LiveConsole, new_page: Any, hall_day: HallDay
) -> None:
    page = new_page()
    login(page, live_console, "manager.district")  # manages the district centre only
    for path in (
        f"/console/dashboard/halls/{hall_day.hall_id}",
        f"/console/dashboard/halls/{hall_day.hall_id}/stats.csv",
        "/console/dashboard/district",
    ):
        response = page.goto(live_console.url(path))
        assert response is not None and response.status == 403, path
        assert page.get_by_role("heading", name="无权访问").is_visible()
    look_at(page, "dashboard-forbidden")
    with live_console.app.app_context():
        district_centre = get_session().scalars(select(Hall.id).where(Hall.code == "PY-D00")).one()
    page.goto(live_console.url("/console/dashboard"))
    page.wait_for_url(f"**/console/dashboard/halls/{district_centre}")
    assert page.get_by_role("heading", name="番禺区政务服务中心 · 大厅看板").is_visible()
    refused = page.request.post(
        live_console.url(
            f"/console/dashboard/halls/{hall_day.hall_id}/follow-ups/{hall_day.follow_up_id}/close"
        ),
        form={"rectification": "不属于本大厅的差评"},
        headers={"X-CSRFToken": page.locator("meta[name=csrf-token]").get_attribute("content")},
    )
    assert refused.status == 403

    clerk = new_page()
    login(clerk, live_console, "clerk.district")
    denied = clerk.goto(live_console.url(f"/console/dashboard/halls/{district_centre}"))
    assert denied is not None and denied.status == 403

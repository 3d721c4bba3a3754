"""The window terminal and the hall screen in the browser: a citizen takes a number through
the API, the clerk calls it on the terminal, the hall screen shows it within 2 seconds; a
clerk of another hall cannot reach this hall's terminal; a revoked display token ends the
screen."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from app.db import get_session, utcnow
from app.halls.models import ServiceCategory, Window
from app.organisation.models import Hall
from app.queueing import codes, displays
from app.queueing.demo import HALL_LAT, HALL_LNG, ROUND_THE_CLOCK_HALL
from app.queueing.models import QUEUED_STATUSES, HallDisplay, Ticket
from app.queueing.settings import from_config as queue_settings
from tests.console.conftest import LiveConsole, login, look_at


def _demo_hall(live: LiveConsole) -> dict[str, Any]:
    """The demo's round-the-clock hall: its id, printed code, category B and window 3."""
    with live.app.app_context():
        session = get_session()
        hall = session.scalars(select(Hall).where(Hall.code == ROUND_THE_CLOCK_HALL[0])).one()
        category = session.scalars(
            select(ServiceCategory).where(
                ServiceCategory.hall_id == hall.id, ServiceCategory.prefix == "B"
            )
        ).one()
        window = session.scalars(
            select(Window).where(Window.hall_id == hall.id, Window.number == 3)
        ).one()
        printed = codes.printed_codes(session, hall.id)[0]
        return {
            "hall_id": hall.id,
            "category_id": category.id,
            "window_id": window.id,
            "code": codes.printed_token(queue_settings(live.app.config), printed),
        }


def _waiting_in(live: LiveConsole, category_id: int) -> int:
    with live.app.app_context():
        return int(
            get_session().scalar(
                select(func.count()).where(
                    Ticket.category_id == category_id, Ticket.status.in_(QUEUED_STATUSES)
                )
            )
            or 0
        )


def _display_token(live: LiveConsole, hall_id: int) -> tuple[int, str]:
    with live.app.app_context():
        session = get_session()
        issued = displays.register(session, hall_id, name="一楼入口屏", staff_id=None, now=utcnow())
        session.commit()
        return issued.display.id, issued.token


def test_a_number_taken_by_api_is_called_on_the_terminal_and_shown_on_the_screen(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = _demo_hall(live_console)
    _display_id, token = _display_token(live_console, hall["hall_id"])
    screen = new_page(width=1920, height=1080)
    screen.goto(live_console.url(f"/console/screen?token={token}"))
    assert screen.url.endswith("/console/screen"), "the token leaves the address bar"
    screen.locator("[data-code-image][src^='data:image/png']").wait_for()

    assert _waiting_in(live_console, hall["category_id"]) == 0
    _user, citizen_token = live_console.citizen()
    taken = live_console.api(
        "POST",
        "/queue/tickets",
        citizen_token,
        json={
            "code": hall["code"],
            "category_id": hall["category_id"],
            "latitude": HALL_LAT,
            "longitude": HALL_LNG,
        },
    )
    assert taken.status_code == 201, taken.text
    number = taken.json()["display"]

    clerk = new_page()
    login(clerk, live_console, "clerk.demo")
    clerk.goto(live_console.url("/console/terminal"))
    look_at(clerk, "terminal-pick")
    clerk.get_by_role("link", name="3号窗口").first.click()
    status = clerk.locator("[data-window-status]")
    if status.get_attribute("data-window-status") != "open":
        clerk.get_by_role("button", name="开窗").click()
        clerk.locator("[data-window-status='open']").wait_for()
    clerk.locator("[data-waiting='B']:not(:text-is('0'))").wait_for(timeout=8000)
    clerk.keyboard.press("F1")  # the shortcut of 叫下一位
    clerk.locator(f"[data-ticket='{number}']").wait_for()
    called_at = time.monotonic()
    screen.locator(f"[data-calls] tr[data-call='{number}']").wait_for(timeout=2000)
    assert time.monotonic() - called_at < 2
    assert f"请{number}号到3号窗口办理" in screen.locator("[data-latest]").inner_text()

    clerk.get_by_role("button", name="开始办理").click()
    clerk.get_by_label("办理事项").fill("社保卡补办")
    look_at(clerk, "terminal-serving")
    clerk.get_by_role("button", name="办结").click()
    clerk.get_by_text(f"{number} 号：已办结").wait_for()
    look_at(screen, "screen-tv")
    with live_console.app.app_context():
        ticket = get_session().scalars(select(Ticket).where(Ticket.display == number)).all()
        assert [t.status.value for t in ticket if t.category_id == hall["category_id"]][
            -1
        ] == "done"


def test_an_empty_queue_says_so_beside_the_desk(live_console: LiveConsole, new_page: Any) -> None:
    hall = _demo_hall(live_console)
    assert _waiting_in(live_console, hall["category_id"]) == 0
    clerk = new_page()
    login(clerk, live_console, "clerk.demo")
    clerk.goto(live_console.url(f"/console/terminal/windows/{hall['window_id']}"))
    if clerk.locator("[data-window-status]").get_attribute("data-window-status") != "open":
        clerk.get_by_role("button", name="开窗").click()
        clerk.locator("[data-window-status='open']").wait_for()
    clerk.get_by_role("button", name="叫下一位").click()
    clerk.locator("#alerts .alert-error").wait_for()


def test_a_clerk_of_another_hall_cannot_reach_this_halls_terminal(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = _demo_hall(live_console)
    page = new_page()
    login(page, live_console, "clerk.donghuan")
    response = page.goto(live_console.url(f"/console/terminal/windows/{hall['window_id']}"))
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", name="无权访问").is_visible()
    look_at(page, "terminal-forbidden")
    refused = page.request.post(
        live_console.url(f"/console/terminal/windows/{hall['window_id']}/call-next"),
        headers={"X-CSRFToken": page.locator("meta[name=csrf-token]").get_attribute("content")},
    )
    assert refused.status == 403
    page.goto(live_console.url("/console/terminal"))
    assert "演示大厅" not in page.locator("main").inner_text()
    assert page.locator(f"a[href$='/terminal/windows/{hall['window_id']}']").count() == 0


def test_a_revoked_display_token_cannot_open_the_screen(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = _demo_hall(live_console)
    display_id, token = _display_token(live_console, hall["hall_id"])
    screen = new_page(width=1920, height=1080)
    screen.goto(live_console.url(f"/console/screen?token={token}"))
    assert screen.get_by_role("heading", name="正在叫号").is_visible()
    with live_console.app.app_context():
        session = get_session()
        displays.revoke(session, session.get(HallDisplay, display_id), staff_id=None, now=utcnow())
        session.commit()
    response = screen.goto(live_console.url("/console/screen"))
    assert response is not None and response.status == 401
    assert "大厅屏凭证无效或已停用" in screen.content()
    forged = new_page().goto(live_console.url("/console/screen?token=hd_forged"))
    assert forged is not None and forged.status == 401

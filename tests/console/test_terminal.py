"""The window terminal in the browser: a citizen takes a number through the API, the clerk
calls it on the terminal and the hall screen shows (and speaks) it within 2 seconds; a
scanned personal code takes a number for its citizen; an empty queue is said in the alerts;
a clerk of another hall cannot reach this hall's terminal."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.db import get_session, utcnow
from app.halls.models import ServiceCategory, Window
from app.organisation.models import Hall
from app.queueing import codes, displays
from app.queueing.demo import HALL_LAT, HALL_LNG, ROUND_THE_CLOCK_HALL
from app.queueing.models import QUEUED_STATUSES, Ticket
from app.queueing.settings import from_config as queue_settings
from tests.console.conftest import LiveConsole, login, look_at

# The screen's speech, recorded: a Chinese voice that writes down what it is asked to say.
FAKE_SPEECH = """
window.spoken = [];
window.SpeechSynthesisUtterance = function (text) { this.text = text; };
Object.defineProperty(window, "speechSynthesis", { value: {
  getVoices: function () { return [{ lang: "zh-CN", name: "test" }]; },
  speak: function (utterance) { window.spoken.push(utterance.text); },
  addEventListener: function () {}
} });
"""


def demo_hall(live: LiveConsole) -> dict[str, Any]:
    """The demo's round-the-clock hall: its id, printed code, categories A and B, window 3."""
    with live.app.app_context():
        session = get_session()
        hall = session.scalars(select(Hall).where(Hall.code == ROUND_THE_CLOCK_HALL[0])).one()
        categories = {
            c.prefix: c.id
            for c in session.scalars(
                select(ServiceCategory).where(ServiceCategory.hall_id == hall.id)
            )
        }
        window = session.scalars(
            select(Window).where(Window.hall_id == hall.id, Window.number == 3)
        ).one()
        printed = codes.printed_codes(session, hall.id)[0]
        return {
            "hall_id": hall.id,
            "category_id": categories["B"],
            "other_category_id": categories["A"],
            "window_id": window.id,
            "code": codes.printed_token(queue_settings(live.app.config), printed),
        }


def waiting_in(live: LiveConsole, category_id: int) -> int:
    with live.app.app_context():
        return int(
            get_session().scalar(
                select(func.count()).where(
                    Ticket.category_id == category_id, Ticket.status.in_(QUEUED_STATUSES)
                )
            )
            or 0
        )


def display_token(live: LiveConsole, hall_id: int) -> tuple[int, str]:
    """A new hall screen for the hall, as a hall manager registers one: (its id, its token)."""
    with live.app.app_context():
        session = get_session()
        issued = displays.register(session, hall_id, name="一楼入口屏", staff_id=None, now=utcnow())
        session.commit()
        return issued.display.id, issued.token


def scanning_citizen(live: LiveConsole, name: str) -> tuple[Any, str, str]:
    """A new citizen, their login token and the personal code their mini-program shows."""
    user, token = live.citizen(name=name)
    return user, token, live.api("GET", "/queue/personal-code", token).json()["code"]


def clerk_at_window(
    live: LiveConsole, new_page: Any, window_id: int, *, without_htmx: bool = False
) -> Any:
    """The demo clerk's terminal page for the window; `without_htmx`: its script never loads
    (the page as it is before htmx has started)."""
    clerk = new_page()
    login(clerk, live, "clerk.demo")
    if without_htmx:
        clerk.route("**/vendor/htmx-*.js", lambda route: route.abort())
    clerk.goto(live.url(f"/console/terminal/windows/{window_id}"))
    return clerk


def _open_window(clerk: Any) -> None:
    if clerk.locator("[data-window-status]").get_attribute("data-window-status") != "open":
        clerk.get_by_role("button", name="开窗").click()
        clerk.locator("[data-window-status='open']").wait_for()


def test_a_number_taken_by_api_is_called_on_the_terminal_and_shown_on_the_screen(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = demo_hall(live_console)
    _display_id, token = display_token(live_console, hall["hall_id"])
    screen = new_page(width=1920, height=1080)
    screen.add_init_script(FAKE_SPEECH)
    screen.goto(live_console.url(f"/console/screen?token={token}"))
    assert screen.url.endswith("/console/screen"), "the token leaves the address bar"
    screen.locator("[data-code-image][src^='data:image/png']").wait_for()

    assert waiting_in(live_console, hall["category_id"]) == 0
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
    clerk.wait_for_url(f"**/console/terminal/windows/{hall['window_id']}")
    _open_window(clerk)
    # The waiting counts are polled: the number taken shows up without a reload.
    clerk.locator("[data-waiting='B']:not(:text-is('0'))").wait_for(timeout=8000)
    call_button = clerk.get_by_role("button", name="叫下一位")
    call_key = json.loads(call_button.get_attribute("hx-headers") or "{}")["Idempotency-Key"]
    clerk.keyboard.press("F1")  # the shortcut of 叫下一位
    clerk.locator(f"[data-ticket='{number}']").wait_for()
    called_at = time.monotonic()
    screen.locator(f"[data-calls] tr[data-call='{number}']").wait_for(timeout=2000)
    assert time.monotonic() - called_at < 2
    assert f"请{number}号到3号窗口办理" in screen.locator("[data-latest]").inner_text()
    # The same click resent (the balancer's retry): the same number answers, nobody is
    # called again and the screen does not announce it twice.
    resent = clerk.request.post(
        live_console.url(f"/console/terminal/windows/{hall['window_id']}/call-next"),
        headers={
            "X-CSRFToken": clerk.locator("meta[name=csrf-token]").get_attribute("content") or "",
            "Idempotency-Key": call_key,
        },
    )
    assert resent.status == 200 and f"已叫 {number} 号" in resent.text()
    time.sleep(0.5)
    assert screen.evaluate("window.spoken") == [f"请{number}号到3号窗口办理"]
    assert "*四" in clerk.locator(f"[data-ticket='{number}']").inner_text(), "masked citizen"

    clerk.keyboard.press("F3")  # 开始办理
    clerk.get_by_text(f"{number} 号：开始办理").wait_for()
    # A transfer to nowhere is refused beside its field, and the ticket stays here.
    clerk.get_by_role("button", name="转移").click()
    clerk.get_by_text("请选择转往的业务或窗口").wait_for()
    clerk.get_by_label("办理事项").fill("社保卡补办")
    look_at(clerk, "terminal-serving")
    clerk.keyboard.press("F4")  # 办结
    clerk.get_by_text(f"{number} 号：已办结").wait_for()
    look_at(screen, "screen-tv")
    with live_console.app.app_context():
        ticket = get_session().get(Ticket, taken.json()["id"])
        assert ticket is not None and ticket.status.value == "done"


def test_an_empty_queue_is_said_in_the_alerts(live_console: LiveConsole, new_page: Any) -> None:
    hall = demo_hall(live_console)
    assert waiting_in(live_console, hall["category_id"]) == 0
    clerk = new_page()
    login(clerk, live_console, "clerk.demo")
    clerk.goto(live_console.url(f"/console/terminal/windows/{hall['window_id']}"))
    _open_window(clerk)
    clerk.get_by_role("button", name="叫下一位").click()
    clerk.locator("#alerts .alert-error").wait_for()
    assert clerk.locator("[data-ticket]").count() == 0


def test_a_scanned_personal_code_takes_a_number_for_its_citizen(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = demo_hall(live_console)
    user, citizen_token, code = scanning_citizen(live_console, "王小红")
    clerk = clerk_at_window(live_console, new_page, hall["window_id"])
    scanner = clerk.get_by_role("textbox", name="个人码")
    scanner.fill("   ")  # a blank scan: said beside the field
    scanner.press("Enter")
    clerk.locator("#scan-form .field-error").wait_for()
    assert "请扫描或输入个人码" in clerk.locator("#scan-form").inner_text()
    # A keyboard-wedge scanner types the code and Enter.
    scanner.fill(code)
    scanner.press("Enter")
    card = clerk.locator("[data-citizen]")
    card.wait_for()
    assert "*小红" in card.inner_text() and "王小红" not in card.inner_text()
    assert scanner.input_value() == "", "the field is ready for the next scan"
    clerk.get_by_label("业务类别").select_option(str(hall["other_category_id"]))
    clerk.get_by_role("button", name="为其取号").click()
    clerk.get_by_text("已为其取号").wait_for()
    with live_console.app.app_context():
        tickets = list(get_session().scalars(select(Ticket).where(Ticket.user_id == user.id)))
    assert [(t.category_id, t.source.value, t.status.value) for t in tickets] == [
        (hall["other_category_id"], "terminal", "waiting")
    ]
    assert tickets[0].display in clerk.locator("#citizen").inner_text()
    # The citizen leaves the queue again, so later tests find the hall as it was.
    cancelled = live_console.api("POST", f"/queue/tickets/{tickets[0].id}/cancel", citizen_token)
    assert cancelled.status_code == 200, cancelled.text


def test_a_scan_the_moment_a_refused_one_is_answered_is_still_sent_by_htmx(
    live_console: LiveConsole, new_page: Any
) -> None:
    # A scanner does not wait: the next code may come as soon as the refused field is back in
    # the page. A submit before htmx had taken the new form over (it did so 20 ms later, when
    # its swap settled) was the browser's own: a GET of this page with the code in its
    # address, and no citizen shown (seen once in CI).
    _, _, code = scanning_citizen(live_console, "李小明")
    clerk = clerk_at_window(live_console, new_page, demo_hall(live_console)["window_id"])
    clerk.evaluate(
        """code => new MutationObserver((changes, observer) => {
            const form = document.querySelector("#scan-form");
            if (!form || !form.querySelector(".field-error")) { return; }
            observer.disconnect();
            form.querySelector("[data-scanner-input]").value = code;
            form.requestSubmit();
        }).observe(document.body, { childList: true, subtree: true })""",
        code,
    )
    scanner = clerk.get_by_role("textbox", name="个人码")
    scanner.fill("   ")
    scanner.press("Enter")
    clerk.locator("[data-citizen]").wait_for()
    assert "*小明" in clerk.locator("[data-citizen]").inner_text()
    assert code not in clerk.url


def test_a_scan_before_htmx_has_started_keeps_the_code_out_of_the_address(
    live_console: LiveConsole, new_page: Any
) -> None:
    # htmx's script is deferred: a scan while the page is still loading (or with the script
    # missing) is the browser's own submit. As a GET it put the personal code (and the CSRF
    # token) in the address bar, the history and the access log.
    _, _, code = scanning_citizen(live_console, "赵小英")
    window_id = demo_hall(live_console)["window_id"]
    clerk = clerk_at_window(live_console, new_page, window_id, without_htmx=True)
    scanner = clerk.get_by_role("textbox", name="个人码")
    scanner.fill(code)
    with clerk.expect_navigation() as navigation:
        scanner.press("Enter")
    assert code not in clerk.url
    assert navigation.value.status == 405  # a POST of the page: refused, the code in the body


def test_every_form_htmx_posts_is_a_post_form_without_htmx_too() -> None:
    # The same holds for every form htmx sends: a take or a check-in carries the code too.
    templates = Path(__file__).resolve().parents[2] / "blueprints/console/templates"
    forms = [
        (path.name, tag)
        for path in sorted(templates.rglob("*.html"))
        for tag in re.findall(r"<form\b[^>]*>", path.read_text(encoding="utf-8"))
        if "hx-post" in tag
    ]
    assert forms, "the console has forms htmx posts"
    assert [name for name, tag in forms if 'method="post"' not in tag] == []


def test_a_clerk_of_another_hall_cannot_reach_this_halls_terminal(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall = demo_hall(live_console)
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
    assert page.locator(f"a[href$='/terminal/windows/{hall['window_id']}']").count() == 0
    assert page.get_by_role("link", name="号窗口").count() > 0, "their own hall's windows"

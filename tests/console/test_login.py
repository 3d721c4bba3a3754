"""Console login: password (errors beside the fields, lockout message), return to the page
asked for, logout, idle timeout, CSRF, and scan login confirmed from the mini-program API."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import select

from app.db import get_session
from app.identity.models import StaffAccount
from tests.console.conftest import LiveConsole, login, look_at


def _qr_code(page: Any) -> str:
    """What the page's QR holds, as the mini-program's scanner would read it."""
    import base64
    import subprocess
    import tempfile

    source = page.get_by_role("img", name=re.compile("二维码")).get_attribute("src")
    png = base64.b64decode(source.split(",", 1)[1])
    with tempfile.NamedTemporaryFile(suffix=".png") as image:
        image.write(png)
        image.flush()
        decoded = subprocess.run(
            ["zbarimg", "--quiet", "--raw", image.name], capture_output=True, text=True, check=False
        )
    if decoded.returncode == 0:
        return decoded.stdout.strip()
    raise AssertionError("zbarimg could not read the QR code")


def test_password_login_shows_errors_beside_fields_and_returns_to_the_page(
    live_console: LiveConsole, new_page: Any
) -> None:
    page = new_page()
    page.goto(live_console.url("/console/account"))
    assert "/console/login" in page.url
    look_at(page, "login")
    page.get_by_role("button", name="登录").click()
    assert page.locator(".field-error").first.inner_text() == "请输入用户名"
    page.get_by_label("用户名", exact=True).fill("clerk.demo")
    page.get_by_label("密码", exact=True).fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_role("alert").inner_text().strip() != ""
    page.get_by_label("用户名", exact=True).fill("clerk.demo")
    page.get_by_label("密码", exact=True).fill("Panyu-Demo-2026!")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/console/account")
    assert page.get_by_role("heading", name="我的账号").is_visible()
    look_at(page, "account")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url("**/console/login")
    page.goto(live_console.url("/console/account"))
    assert "/console/login" in page.url


def test_a_forged_csrf_token_is_refused(live_console: LiveConsole, new_page: Any) -> None:
    page = new_page()
    login(page, live_console, "clerk.demo")
    response = page.request.post(
        live_console.url("/console/account/unlink"), form={"csrf_token": "forged"}
    )
    assert response.status == 400
    assert "页面已过期" in response.text()
    missing = page.request.post(live_console.url("/console/logout"))
    assert missing.status == 400


def test_an_idle_session_ends_and_says_so(live_console: LiveConsole, new_page: Any) -> None:
    page = new_page()
    login(page, live_console, "clerk.demo")
    live_console.app.config["CONSOLE_IDLE_MINUTES"] = 0
    try:
        time.sleep(1.1)
        page.goto(live_console.url("/console/account"))
        assert "/console/login" in page.url
        assert "长时间未操作" in page.locator("#alerts").inner_text()
    finally:
        live_console.app.config["CONSOLE_IDLE_MINUTES"] = 30


def test_scan_login_completes_from_the_mini_program_api(
    live_console: LiveConsole, new_page: Any
) -> None:
    staff_page = new_page()
    login(staff_page, live_console, "reviewer.weather")
    staff_page.goto(live_console.url("/console/account"))
    user, token = live_console.citizen(level="verified", name="王五")
    linked = live_console.api(
        "POST", "/staff/scan-confirmations", token, json={"code": _qr_code(staff_page)}
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["purpose"] == "link"
    staff_page.get_by_text("已绑定微信").wait_for(timeout=5000)

    page = new_page()
    page.goto(live_console.url("/console/login"))
    code = _qr_code(page)
    _stranger, stranger_token = live_console.citizen(level="verified")
    refused = live_console.api(
        "POST", "/staff/scan-confirmations", stranger_token, json={"code": code}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "WECHAT_NOT_LINKED"
    confirmed = live_console.api("POST", "/staff/scan-confirmations", token, json={"code": code})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"purpose": "login", "staff_display_name": "气象局审批人员"}
    page.wait_for_url("**/console/", timeout=5000)
    assert page.get_by_text("气象局审批人员").is_visible()
    again = live_console.api("POST", "/staff/scan-confirmations", token, json={"code": code})
    assert again.status_code == 409 and again.json()["code"] == "SCAN_CODE_USED"

    with live_console.app.app_context():
        staff = (
            get_session()
            .scalars(select(StaffAccount).where(StaffAccount.username == "reviewer.weather"))
            .one()
        )
        assert staff.wechat_user_id == user.id

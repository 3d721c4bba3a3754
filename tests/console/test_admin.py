"""The admin pages in the browser: a staff account created with a hall-scoped role can log
in (a weak password is refused beside the field); a hall screen's token is issued, opens the
screen, and stops working when revoked; seals are suspended and reactivated; other staff are
refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import TokenInvalid
from app.halls import service as halls
from app.halls.models import WindowStatus
from app.identity import staff as staff_service
from app.identity.models import StaffRole
from app.organisation.models import Hall
from app.queueing import displays
from app.queueing.demo import ROUND_THE_CLOCK_HALL
from app.seals.models import Seal
from tests.console.conftest import LiveConsole, login, look_at

STRONG_PASSWORD = "Window-Clerk-2026!"


def _demo_hall_id(live: LiveConsole) -> int:
    with live.app.app_context():
        return int(
            get_session().scalar(select(Hall.id).where(Hall.code == ROUND_THE_CLOCK_HALL[0]))
        )


def test_the_admin_creates_a_clerk_who_can_then_log_in(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall_id = _demo_hall_id(live_console)
    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url("/console/admin"))
    look_at(page, "admin-home")
    page.get_by_role("link", name="工作人员与角色").click()
    look_at(page, "admin-staff")
    page.get_by_role("link", name="新建账号").click()
    form = page.locator("form").filter(has=page.get_by_role("button", name="创建账号"))
    form.get_by_label("用户名").fill("clerk.console")
    form.get_by_label("姓名").fill("控制台窗口人员")
    form.get_by_label("初始密码").fill("weakpass1")
    form.get_by_label("角色").select_option("window_clerk")
    form.get_by_label("大厅（窗口人员、大厅主管）").select_option(str(hall_id))
    form.get_by_role("button", name="创建账号").click()
    error = page.locator(".has-error .field-error")
    assert error.count() == 1 and "密码" in error.inner_text()
    assert page.locator(".has-error input[name='password']").count() == 1
    look_at(page, "admin-staff-error")
    form = page.locator("form").filter(has=page.get_by_role("button", name="创建账号"))
    form.get_by_label("初始密码").fill(STRONG_PASSWORD)
    form.get_by_role("button", name="创建账号").click()
    page.get_by_text("已创建账号 clerk.console").wait_for()
    assert page.get_by_label("窗口人员（演示大厅").is_checked()

    # The list's filters are the API's: role and hall together, then the account's state.
    page.goto(live_console.url("/console/admin/staff"))
    page.get_by_label("角色").select_option("window_clerk")
    page.get_by_label("大厅", exact=True).select_option(str(hall_id))
    page.get_by_role("button", name="筛选").click()
    listed = page.locator("tr[data-staff]")
    names = {listed.nth(i).get_attribute("data-staff") for i in range(listed.count())}
    assert {"clerk.console", "clerk.demo"} <= names and "admin" not in names
    assert "clerk.district" not in names

    clerk = new_page()
    login(clerk, live_console, "clerk.console", STRONG_PASSWORD)
    clerk.goto(live_console.url("/console/terminal"))
    assert "演示大厅" in clerk.locator("main").inner_text()


def test_a_screen_token_is_issued_opens_the_screen_and_is_revoked(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall_id = _demo_hall_id(live_console)
    with live_console.app.app_context():
        hall_count = len(get_session().scalars(select(Hall)).all())
    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url("/console/admin/halls"))
    assert page.locator("tr[data-hall]").count() == hall_count >= 19
    page.locator(f"tr[data-hall='{ROUND_THE_CLOCK_HALL[0]}'] a").click()
    page.get_by_label("大厅屏位置").fill("二楼等候区屏")
    page.get_by_role("button", name="登记并生成地址").click()
    url = page.locator("[data-screen-url]").input_value()
    token = url.split("token=", 1)[1]
    look_at(page, "admin-hall")
    with live_console.app.app_context():
        assert displays.authenticate(get_session(), token, now=utcnow()).hall_id == hall_id
        get_session().rollback()
    screen = new_page(width=1920, height=1080)
    screen.goto(url)
    assert screen.get_by_role("heading", name="正在叫号").is_visible()

    page.goto(live_console.url(f"/console/admin/halls/{hall_id}"))
    page.get_by_role("button", name="停用“二楼等候区屏”").first.click()
    page.get_by_text("已停用").first.wait_for()
    with live_console.app.app_context(), pytest.raises(TokenInvalid):
        displays.authenticate(get_session(), token, now=utcnow())
    refused = screen.goto(live_console.url("/console/screen"))
    assert refused is not None and refused.status == 401


def test_a_seal_is_suspended_and_reactivated_from_the_page(
    live_console: LiveConsole, new_page: Any
) -> None:
    with live_console.app.app_context():
        seal = get_session().scalars(select(Seal).where(Seal.status == "active")).first()
        assert seal is not None
        code = seal.code
        # Whom the seal service lets apply it: reviewers of the seal's department, nobody else.
        reviewers, _ = staff_service.list_staff(
            get_session(), role=StaffRole.REVIEWER, department_id=seal.department_id
        )
        assert reviewers
        holders = {account.username for account in reviewers}
    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url("/console/admin/seals"))
    look_at(page, "admin-seals")
    section = page.locator(f"[data-seal='{code}']")
    shown = section.locator("dd").nth(4).inner_text()
    assert all(username in shown for username in holders)
    assert "clerk.demo" not in shown and "（admin）" not in shown
    assert "系统（规则秒批）" in shown  # rule-based approvals sign with any department's seal
    section.get_by_role("button", name="停用").click()
    assert "请勾选确认后再操作" in page.locator(".field-error").first.inner_text()
    section = page.locator(f"[data-seal='{code}']")
    section.get_by_label("原因").fill("演示：临时停用")
    section.get_by_label("我已核实，确认操作").check()
    section.get_by_role("button", name="停用").click()
    page.get_by_text("已停用").first.wait_for()
    section = page.locator(f"[data-seal='{code}']")
    assert section.locator("[data-seal-status]").get_attribute("data-seal-status") == "suspended"
    section.get_by_label("我已核实，确认操作").check()
    section.get_by_role("button", name="启用").click()
    page.get_by_text("已启用").first.wait_for()
    with live_console.app.app_context():
        status = get_session().scalar(select(Seal.status).where(Seal.code == code))
        assert status == "active"


def test_other_staff_get_403_on_admin_pages(live_console: LiveConsole, new_page: Any) -> None:
    page = new_page()
    login(page, live_console, "clerk.demo")
    response = page.goto(live_console.url("/console/admin"))
    assert response is not None and response.status == 403
    assert page.get_by_role("link", name="系统管理").count() == 0
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    refused = page.request.post(
        live_console.url("/console/admin/staff"),
        form={"csrf_token": token, "username": "x.y.z", "display_name": "某", "password": "p"},
    )
    assert refused.status == 403


def test_the_admin_changes_an_accounts_roles_and_its_logins_end(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall_id = _demo_hall_id(live_console)
    with live_console.app.app_context():
        session = get_session()
        account = staff_service.create_staff(
            session,
            username="roles.console",
            display_name="角色测试人员",
            password=STRONG_PASSWORD,
            grants=[(StaffRole.WINDOW_CLERK, hall_id, None)],
            actor=Actor.system(),
            now=utcnow(),
        )
        session.commit()
        staff_id = account.id
    clerk = new_page()
    login(clerk, live_console, "roles.console", STRONG_PASSWORD)

    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url(f"/console/admin/staff/{staff_id}"))
    page.get_by_label("新增角色").select_option("hall_manager")
    page.get_by_role("button", name="保存角色").click()
    assert "大厅" in page.locator(".has-error .field-error").first.inner_text()
    look_at(page, "admin-staff-roles-error")
    page.get_by_label("新增角色").select_option("hall_manager")
    page.get_by_label("大厅（窗口人员、大厅主管）").select_option(str(hall_id))
    page.get_by_role("button", name="保存角色").click()
    page.get_by_text("已更新 roles.console 的角色").wait_for()
    with live_console.app.app_context():
        roles = {g.role.value for g in staff_service.get_staff(get_session(), staff_id).grants}
        assert roles == {"window_clerk", "hall_manager"}

    clerk.goto(live_console.url("/console/terminal"))
    assert "/console/login" in clerk.url  # the change ended the account's logins


def test_the_admin_edits_a_windows_categories_closes_it_and_stops_a_category(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall_id = _demo_hall_id(live_console)
    with live_console.app.app_context():
        names = [c.name for c in halls.list_categories(get_session(), hall_id)]
    first, second = names[0], names[1]
    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url(f"/console/admin/halls/{hall_id}"))
    form = page.locator("form").filter(has=page.get_by_role("button", name="添加窗口"))
    form.get_by_label("窗口号").fill("1")
    form.get_by_role("button", name="添加窗口").click()
    assert "窗口号" in page.locator(".has-error").first.inner_text()  # number 1 is taken
    form = page.locator("form").filter(has=page.get_by_role("button", name="添加窗口"))
    form.get_by_label("窗口号").fill("41")
    form.get_by_label(first).check()
    form.get_by_role("button", name="添加窗口").click()
    page.get_by_text("窗口已添加").wait_for()

    page.get_by_role("link", name="修改41号窗口").click()
    look_at(page, "admin-window")
    assert page.get_by_label(first).is_checked()
    page.get_by_label(first).uncheck()
    page.get_by_label(second).check()
    page.get_by_role("button", name="保存窗口").click()
    page.get_by_text("41号窗口已保存").wait_for()
    assert second in page.locator("tr[data-window='41']").inner_text()

    with live_console.app.app_context():
        session = get_session()
        window = next(w for w in halls.list_windows(session, hall_id) if w.number == 41)
        assert [c.name for c in window.categories] == [second]
        # A clerk opened it: the admin takes it out of service from the page.
        window.status = WindowStatus.OPEN
        session.commit()
    page.get_by_role("link", name="修改41号窗口").click()
    page.get_by_role("button", name="关闭41号窗口").click()
    page.get_by_text("41号窗口已关闭").wait_for()
    with live_console.app.app_context():
        window = next(w for w in halls.list_windows(get_session(), hall_id) if w.number == 41)
        assert window.status == WindowStatus.CLOSED

    page.get_by_role("link", name=f"修改{second}").click()
    page.get_by_label("启用（停用后不再出号）").uncheck()
    page.get_by_label("每日号源").fill("120")
    page.get_by_role("button", name="保存业务类别").click()
    page.get_by_text(f"业务类别“{second}”已保存").wait_for()
    with live_console.app.app_context():
        category = next(
            c for c in halls.list_categories(get_session(), hall_id) if c.name == second
        )
        assert (category.active, category.daily_cap) == (False, 120)
        category.active = True  # other tests take numbers in this category
        get_session().commit()


def test_the_admin_unlocks_resets_and_deactivates_an_account(
    live_console: LiveConsole, new_page: Any
) -> None:
    hall_id = _demo_hall_id(live_console)
    with live_console.app.app_context():
        session = get_session()
        account = staff_service.create_staff(
            session,
            username="locked.console",
            display_name="锁定测试人员",
            password=STRONG_PASSWORD,
            grants=[(StaffRole.WINDOW_CLERK, hall_id, None)],
            actor=Actor.system(),
            now=utcnow(),
        )
        account.locked_until = utcnow() + dt.timedelta(minutes=30)
        session.commit()
        staff_id = account.id
    page = new_page()
    login(page, live_console, "admin")
    page.goto(live_console.url("/console/admin/staff?active=1"))
    assert "已锁定" in page.locator("tr[data-staff='locked.console']").inner_text()
    page.get_by_role("link", name="locked.console").click()
    look_at(page, "admin-staff-account")
    page.get_by_role("button", name="解除锁定").click()
    page.get_by_text("已解除 locked.console 的锁定").wait_for()
    assert page.locator("[data-account-status]").inner_text() == "正常"

    page.get_by_label("新密码").fill("short")
    page.get_by_role("button", name="重置密码").click()
    assert "密码" in page.locator(".has-error .field-error").inner_text()
    page.get_by_label("新密码").fill("Reset-By-Admin-2026!")
    page.get_by_role("button", name="重置密码").click()
    page.get_by_text("已重置 locked.console 的密码").wait_for()
    clerk = new_page()
    login(clerk, live_console, "locked.console", "Reset-By-Admin-2026!")
    clerk.goto(live_console.url("/console/terminal"))
    assert "/console/terminal" in clerk.url

    page.get_by_role("button", name="停用账号").click()
    page.get_by_text("已停用 locked.console").wait_for()
    with live_console.app.app_context():
        assert staff_service.get_staff(get_session(), staff_id).active is False
    clerk.goto(live_console.url("/console/terminal"))
    assert "/console/login" in clerk.url
    page.goto(live_console.url("/console/admin/staff?active=0"))
    assert page.locator("tr[data-staff='locked.console']").count() == 1
    assert page.locator("tr[data-staff='admin']").count() == 0

    # The admin cannot deactivate themself: the service's refusal comes back on the page.
    page.goto(live_console.url("/console/admin/staff"))
    page.get_by_role("link", name="admin", exact=True).click()
    page.get_by_role("button", name="停用账号").click()
    assert page.locator(".alert-error").count() == 1

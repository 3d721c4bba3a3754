"""The policy desk in the browser: an officer builds a policy's criteria in the form, sees the
live match count, publishes it and sees the pushed count the database holds; criteria the
language refuses are shown beside the field and nothing is saved; another department's
officer cannot reach the policy."""

from __future__ import annotations

import re
import time
from typing import Any

import requests
from sqlalchemy import func, select

from app.db import get_session
from app.enterprises.models import BindingRole, BindingStatus, EnterpriseBinding
from app.policies import service
from app.policies.models import EnterpriseProfile, Policy
from tests.console.conftest import LiveConsole, login, look_at


def _policy_count(live: LiveConsole) -> int:
    with live.app.app_context():
        return int(get_session().scalar(select(func.count()).select_from(Policy)) or 0)


def _subscribed_small_enterprises(live: LiveConsole, count: int = 3) -> None:
    """Legal representatives of small and micro enterprises who accepted policy pushes in the
    mini-program (and in WeChat, the emulator), so publishing has someone to push to."""
    with live.app.app_context():
        session = get_session()
        enterprise_ids = list(
            session.scalars(
                select(EnterpriseProfile.enterprise_id)
                .where(EnterpriseProfile.size_class.in_(["small", "micro"]))
                .where(
                    EnterpriseProfile.enterprise_id.not_in(select(EnterpriseBinding.enterprise_id))
                )
                .order_by(EnterpriseProfile.enterprise_id)
                .limit(count)
            )
        )
    for enterprise_id in enterprise_ids:
        user, token = live.citizen()
        with live.app.app_context():
            session = get_session()
            session.add(
                EnterpriseBinding(
                    user_id=user.id,
                    enterprise_id=enterprise_id,
                    role=BindingRole.LEGAL_REPRESENTATIVE,
                    status=BindingStatus.ACTIVE,
                )
            )
            session.commit()
        granted = requests.post(
            f"{live.emulator_url}/_emulator/subscriptions",
            json={"openid": user.openid, "template_id": "policy_push", "count": 1},
            timeout=5,
        )
        assert granted.status_code == 200, granted.text
        reported = live.api(
            "POST", "/me/subscriptions", token, json={"results": {"policy_push": "accept"}}
        )
        assert reported.status_code == 200, reported.text


def _fill_basics(page: Any, title: str) -> None:
    page.get_by_label("政策名称").fill(title)
    page.get_by_label("文号").fill("番商务〔2026〕88号")
    page.get_by_label("政策摘要").fill("对小微企业稳岗给予补贴。")
    page.get_by_label("扶持方式").select_option("subsidy")
    page.get_by_label("兑现事项编码（申请兑现时必填）").fill("PY-SWU-WGBT")


def test_an_officer_builds_previews_and_publishes_a_policy(
    live_console: LiveConsole, new_page: Any
) -> None:
    _subscribed_small_enterprises(live_console)
    page = new_page()
    login(page, live_console, "policy.commerce")
    page.goto(live_console.url("/console/policies"))
    look_at(page, "policy-list")
    page.get_by_role("link", name="新建政策").click()
    _fill_basics(page, "小微企业稳岗补贴（控制台）")
    page.get_by_label("小型", exact=True).check()
    page.get_by_label("微型", exact=True).check()
    page.locator("[data-eligible]").wait_for(timeout=8000)
    eligible = int(page.locator("[data-eligible]").inner_text())
    assert eligible > 0
    look_at(page, "policy-form-preview")
    page.get_by_role("button", name="保存草稿").click()
    page.get_by_text("草稿已保存").wait_for()
    page.get_by_role("button", name="发布并推送").click()
    flashed = page.locator(".alert-success").inner_text()
    matched = int(re.search(r"匹配 (\d+) 家企业", flashed).group(1))  # type: ignore[union-attr]
    assert matched >= eligible  # publishing also stores the maybes (facts missing)
    policy_id = int(page.url.rstrip("/").split("/")[-1])

    # The pushes drain on the live server's job thread: the page shows what the database says.
    with live_console.app.app_context():
        deadline = time.monotonic() + 20
        while True:
            reach = service.reach(get_session(), policy_id)
            get_session().rollback()
            if reach["waiting"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    page.reload()
    assert int(page.locator("[data-matched]").inner_text()) == reach["matched"] == matched
    assert int(page.locator("[data-pushed]").inner_text()) == reach["pushed"]
    assert reach["pushed"] >= 3  # the subscribed legal representatives above
    assert page.locator("svg.chart g[data-bar='匹配企业']").get_attribute("data-value") == str(
        matched
    )
    look_at(page, "policy-stats")


def test_contradictory_criteria_are_shown_beside_the_field_and_nothing_is_saved(
    live_console: LiveConsole, new_page: Any
) -> None:
    before = _policy_count(live_console)
    page = new_page()
    login(page, live_console, "policy.commerce")
    page.goto(live_console.url("/console/policies/new"))
    _fill_basics(page, "矛盾条件")
    page.get_by_label("从业人数不少于").fill("100")
    page.get_by_label("从业人数不多于").fill("10")
    page.get_by_role("button", name="保存草稿").click()
    error = page.locator(".has-error .field-error").first
    assert "下限大于上限" in error.inner_text()
    look_at(page, "policy-form-error")
    assert _policy_count(live_console) == before
    page.get_by_label("政策名称").fill("")
    page.get_by_role("button", name="保存草稿").click()
    assert "请填写政策名称" in page.locator(".field-error").first.inner_text()


def test_another_departments_officer_cannot_reach_the_policy(
    live_console: LiveConsole, new_page: Any
) -> None:
    with live_console.app.app_context():
        policy_id = get_session().scalar(select(Policy.id).order_by(Policy.id))
    clerk = new_page()
    login(clerk, live_console, "reviewer.weather")
    denied = clerk.goto(live_console.url(f"/console/policies/{policy_id}"))
    assert denied is not None and denied.status == 403
    assert clerk.get_by_role("heading", name="无权访问").is_visible()
    assert clerk.get_by_role("link", name="政策台").count() == 0

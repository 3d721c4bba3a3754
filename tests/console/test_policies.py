"""The policy desk in the browser: an officer builds a policy's criteria in the form (pickers
and a numeric condition), sees the live match count, publishes it and sees the pushed count the
database holds; criteria the language refuses are shown beside the field and nothing is saved;
an officer of another department gets 403 on the policy's pages and on publishing it."""

from __future__ import annotations

import re
from typing import Any

import requests
from sqlalchemy import func, select

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
)
from app.identity.models import StaffRole
from app.identity.staff import create_staff
from app.organisation.models import Department
from app.policies import criteria as crit
from app.policies import service
from app.policies.accounts import ACCOUNT_CONTEXT
from app.policies.models import (
    Delivery,
    EnterpriseProfile,
    MatchStatus,
    Policy,
    PolicyMatch,
    PolicyStatus,
    ReceivingAccount,
)
from app.security import get_cipher
from app.security.masking import mask_account
from tests.console.conftest import DEMO_PASSWORD, LiveConsole, login, look_at

ACCOUNT = "6222020202020202020"


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
                .where(EnterpriseProfile.employees >= 1)
                .where(
                    EnterpriseProfile.enterprise_id.not_in(select(EnterpriseBinding.enterprise_id))
                )
                .order_by(EnterpriseProfile.enterprise_id)
                .limit(count)
            )
        )
    assert len(enterprise_ids) == count
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


def _department_id(live: LiveConsole, code: str) -> int:
    with live.app.app_context():
        found = get_session().scalar(select(Department.id).where(Department.code == code))
        assert found is not None
        return int(found)


def test_an_officer_builds_previews_and_publishes_a_policy(
    live_console: LiveConsole, new_page: Any
) -> None:
    _subscribed_small_enterprises(live_console)
    before = _policy_count(live_console)
    page = new_page()
    login(page, live_console, "policy.commerce")
    page.goto(live_console.url("/console/policies"))
    page.get_by_role("link", name="新建政策").click()
    _fill_basics(page, "小微企业稳岗补贴（控制台）")
    page.get_by_label("小型", exact=True).check()
    page.get_by_label("微型", exact=True).check()
    page.get_by_label("条件1：字段").select_option("employees")
    page.get_by_label("条件1：比较").select_option(">=")
    page.get_by_label("条件1：取值").fill("1")
    page.get_by_label("条件1：取值").blur()
    # The preview shows the near misses of the three criteria (two pickers... and the row).
    page.get_by_text("缺“从业人数≥1”").wait_for(timeout=8000)
    eligible = int(page.locator("[data-eligible]").inner_text())
    assert eligible > 0
    look_at(page, "policy-form-preview")

    page.get_by_role("button", name="保存草稿").click()
    page.get_by_text("草稿已保存").wait_for()
    assert _policy_count(live_console) == before + 1
    policy_id = int(page.url.rstrip("/").split("/")[-1])
    with live_console.app.app_context():
        policy = get_session().get(Policy, policy_id)
        assert policy is not None
        rules = [c.rule for c in service.current_criteria(get_session(), policy)]
    assert {"in": [{"var": "size_class"}, ["micro", "small"]]} in rules
    assert {">=": [{"var": "employees"}, 1]} in rules

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="发布并推送").click()
    flashed = page.locator(".alert-success").inner_text()
    matched = int(re.search(r"匹配 (\d+) 家企业", flashed).group(1))  # type: ignore[union-attr]
    assert matched >= eligible  # publishing also stores the maybes (facts missing)

    # The pushes drain on the live server's job thread; the figures refresh themselves until
    # nothing waits, and then show what the database says.
    page.locator("[data-draining]").wait_for(state="detached", timeout=30_000)
    with live_console.app.app_context():
        reach = service.reach(get_session(), policy_id)
    assert reach["waiting"] == 0
    assert int(page.locator("[data-matched]").inner_text()) == reach["matched"] == matched
    assert int(page.locator("[data-pushed]").inner_text()) == reach["pushed"]
    assert reach["pushed"] >= 3  # the subscribed legal representatives above

    # Editing shows the stored criteria in the pickers and rows they came from.
    page.goto(live_console.url(f"/console/policies/{policy_id}/edit"))
    assert page.get_by_label("微型", exact=True).is_checked()
    assert not page.get_by_label("中型", exact=True).is_checked()
    assert page.get_by_label("条件1：字段").input_value() == "employees"
    assert page.get_by_label("条件1：取值").input_value() == "1"

    page.goto(live_console.url("/console/policies"))
    row = page.locator(f"tr[data-policy='{policy_id}']")
    assert "已发布" in row.inner_text()
    look_at(page, "policy-list")
    row.get_by_role("link", name="统计").click()
    bar = page.locator("svg.chart g[data-bar='已推送']")
    assert bar.get_attribute("data-value") == str(reach["pushed"])
    assert page.locator("svg.chart g[data-bar='匹配企业']").get_attribute("data-value") == str(
        matched
    )
    look_at(page, "policy-stats")


def test_a_numeric_condition_without_a_value_is_refused_beside_it_and_nothing_is_saved(
    live_console: LiveConsole, new_page: Any
) -> None:
    before = _policy_count(live_console)
    page = new_page()
    login(page, live_console, "policy.commerce")
    page.goto(live_console.url("/console/policies/new"))
    _fill_basics(page, "缺少取值的条件")
    page.get_by_label("小型", exact=True).check()
    page.get_by_label("条件2：字段").select_option("revenue_yuan")
    page.get_by_label("条件2：比较").select_option("<=")
    page.get_by_role("button", name="保存草稿").click()
    row = page.locator("[data-condition='2']")
    error = row.locator(".has-error .field-error")
    assert "须为非负整数" in error.inner_text()
    # Beside the value it lacks, which is marked invalid; the other rows carry no error.
    assert row.get_by_label("条件2：取值").get_attribute("aria-invalid") == "true"
    assert page.locator("[data-condition='1'] .field-error").count() == 0
    # What was chosen is still there to correct.
    assert page.get_by_label("小型", exact=True).is_checked()
    look_at(page, "policy-form-error")
    assert _policy_count(live_console) == before


def test_an_officer_of_another_department_cannot_open_or_publish_the_policy(
    live_console: LiveConsole, new_page: Any
) -> None:
    commerce = _department_id(live_console, "PY-SWU")
    weather = _department_id(live_console, "PY-QXJ")
    with live_console.app.app_context():
        session = get_session()
        create_staff(
            session,
            username="policy.weather",
            display_name="气象局政策专员",
            password=DEMO_PASSWORD,
            grants=[(StaffRole.POLICY_OFFICER, None, weather)],
            actor=Actor.system(),
            now=utcnow(),
        )
        policy = service.create_policy(
            session,
            department_id=commerce,
            fields={
                "title": "商务局的草稿",
                "doc_number": "番商务〔2026〕89号",
                "summary": "仅商务局可管理。",
                "benefit_kind": "service",
                "delivery": "automatic",
            },
            criteria=crit.from_structured({"size_classes": ["small"]}, doc="番商务〔2026〕89号"),
            staff_id=None,
            now=utcnow(),
        )
        session.commit()
        policy_id = policy.id

    page = new_page()
    login(page, live_console, "policy.weather")
    for path in ("", "/edit", "/stats", "/beneficiaries.csv"):
        denied = page.goto(live_console.url(f"/console/policies/{policy_id}{path}"))
        assert denied is not None and denied.status == 403, path
    assert page.get_by_role("heading", name="无权访问").is_visible()
    listed = page.goto(live_console.url(f"/console/policies?department_id={commerce}"))
    assert listed is not None and listed.status == 403

    # Their own list opens (their department, without the other's policy).
    page.goto(live_console.url("/console/policies"))
    assert page.locator(f"tr[data-policy='{policy_id}']").count() == 0
    token = page.locator("meta[name='csrf-token']").get_attribute("content")
    published = page.request.post(
        live_console.url(f"/console/policies/{policy_id}/publish"),
        form={"csrf_token": token},
        max_redirects=0,
    )
    assert published.status == 403
    with live_console.app.app_context():
        stored = get_session().get(Policy, policy_id)
        assert stored is not None and stored.status is PolicyStatus.DRAFT


def test_the_automatic_benefit_list_shows_what_the_csv_holds(
    live_console: LiveConsole, new_page: Any
) -> None:
    commerce = _department_id(live_console, "PY-SWU")
    with live_console.app.app_context():
        session = get_session()
        policy = session.scalars(
            select(Policy).where(
                Policy.department_id == commerce,
                Policy.delivery == Delivery.AUTOMATIC,
                Policy.status == PolicyStatus.PUBLISHED,
            )
        ).first()
        assert policy is not None
        policy_id, expected = policy.id, service.reach(session, policy.id)["eligible"]
        first = session.scalars(
            select(PolicyMatch.enterprise_id)
            .join(RegistryEnterprise, RegistryEnterprise.id == PolicyMatch.enterprise_id)
            .where(PolicyMatch.policy_id == policy_id, PolicyMatch.status == MatchStatus.ELIGIBLE)
            .order_by(RegistryEnterprise.uscc)
        ).first()
        enterprise = session.get(RegistryEnterprise, first)
        assert enterprise is not None
    assert expected > 0
    user, _token = live_console.citizen()
    with live_console.app.app_context():
        session = get_session()
        session.add(
            ReceivingAccount(
                enterprise_id=enterprise.id,
                bank_name="中国工商银行番禺支行",
                account_name=enterprise.name,
                account_number_sealed=get_cipher().encrypt(ACCOUNT, context=ACCOUNT_CONTEXT),
                account_number_masked=mask_account(ACCOUNT),
                confirmed_by_user_id=user.id,
                confirmed_at=utcnow(),
            )
        )
        session.commit()
    page = new_page()
    login(page, live_console, "policy.commerce")
    page.goto(live_console.url(f"/console/policies/{policy_id}/stats"))
    shown = page.locator("table[data-beneficiaries] tbody tr")
    assert shown.count() == expected
    href = page.get_by_role("link", name="下载 CSV").get_attribute("href") or ""
    download = page.request.get(live_console.url(href))
    assert download.status == 200
    assert download.headers["content-type"].startswith("text/csv")
    lines = download.text().lstrip("\ufeff").strip().splitlines()
    assert len(lines) == expected + 1
    # The same rows, first cells (USCC) in the same order; account numbers masked in both.
    first_cells = [line.split(",")[0] for line in lines[1:]]
    assert shown.locator("td:first-child").all_inner_texts() == first_cells
    shown_text = page.locator("table[data-beneficiaries]").inner_text()
    assert mask_account(ACCOUNT) in shown_text and ACCOUNT not in shown_text
    assert ACCOUNT not in download.text()
    look_at(page, "policy-beneficiaries")


def test_an_officer_edits_publishes_and_withdraws_after_confirming(
    live_console: LiveConsole, new_page: Any
) -> None:
    commerce = _department_id(live_console, "PY-SWU")
    with live_console.app.app_context():
        session = get_session()
        policy = service.create_policy(
            session,
            department_id=commerce,
            fields={
                "title": "待编辑的政策",
                "doc_number": "番商务〔2026〕90号",
                "summary": "编辑后发布，再撤回。",
                "benefit_kind": "service",
                "delivery": "automatic",
            },
            criteria=crit.from_structured(
                {"size_classes": ["medium"], "towns": ["市桥街"]}, doc="番商务〔2026〕90号"
            ),
            staff_id=None,
            now=utcnow(),
        )
        session.commit()
        policy_id = policy.id
        demo_id = session.scalar(select(Policy.id).where(Policy.doc_number == "番商务〔2024〕15号"))
    page = new_page()
    login(page, live_console, "policy.commerce")
    # A seeded policy's criteria (industries and a revenue range) come back into the form.
    page.goto(live_console.url(f"/console/policies/{demo_id}/edit"))
    industries = page.get_by_label("适用行业（可多选，按住 Ctrl 点选）")
    assert industries.evaluate("s => [...s.selectedOptions].map(o => o.value)") == ["H61", "H62"]
    assert page.get_by_label("条件1：字段").input_value() == "revenue_yuan"
    assert page.get_by_label("条件1：取值").input_value() == "1000000"

    page.goto(live_console.url(f"/console/policies/{policy_id}/edit"))
    assert page.get_by_label("中型", exact=True).is_checked()
    assert page.get_by_label("市桥街", exact=True).is_checked()
    page.get_by_label("政策名称").fill("已编辑的政策")
    page.get_by_role("button", name="保存草稿").click()
    page.get_by_text("已保存").first.wait_for()
    with live_console.app.app_context():
        stored = get_session().get(Policy, policy_id)
        assert stored is not None
        # The criteria did not change: no new version.
        assert (stored.title, stored.criteria_version) == ("已编辑的政策", 1)

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="发布并推送").click()
    assert page.locator("[data-policy-status]").get_attribute("data-policy-status") == "draft"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="发布并推送").click()
    page.get_by_text("已发布：匹配").wait_for()
    assert page.locator("[data-policy-status]").get_attribute("data-policy-status") == "published"
    look_at(page, "policy-detail")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="撤回政策").click()  # no reason: refused beside the field
    assert "请填写撤回原因" in page.locator(".field-error").inner_text()
    page.get_by_label("撤回原因").fill("政策调整，另行发布")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="撤回政策").click()
    page.get_by_text("已撤回；").wait_for()
    with live_console.app.app_context():
        stored = get_session().get(Policy, policy_id)
        assert stored is not None and stored.status is PolicyStatus.WITHDRAWN
        assert stored.withdraw_reason == "政策调整，另行发布"

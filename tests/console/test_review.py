"""The reviewer desk in the browser: an application that fell to review is found in the
department's queue, its rule results read, and approved with the seal, and the applicant's
wallet holds the sealed licence; a rejection needs its reason beside the field; another
department's reviewer gets a 403 page; the 告知承诺 inspections are confirmed or put to
rectification."""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

from PIL import Image
from sqlalchemy import select

from app.applications.models import Application, Inspection
from app.audit.service import Actor
from app.calendar import local_day
from app.db import get_session, utcnow
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
    RegistryStatus,
)
from app.identity.models import StaffRole, User
from app.identity.staff import create_staff
from app.organisation.models import Department
from tests.console.conftest import DEMO_PASSWORD, LiveConsole, login, look_at
from tests.factories.seals import handwriting_png


def _picture(kind: str) -> bytes:
    """A small scan as the phone uploads it: PNG or PDF (Pillow writes both)."""
    out = io.BytesIO()
    Image.new("RGB", (120, 80), (40, 90, 160)).save(out, format=kind)
    return out.getvalue()


def _sign_and_submit(
    live: LiveConsole, token: str, body: dict[str, Any], uploads: dict[str, str] | None = None
) -> dict[str, Any]:
    """File a draft, upload its materials ({material id: PNG or PDF}), sign it by hand and
    submit it, as the mini-program does."""
    draft = live.api("POST", "/applications", token, json={**body, "submit": False})
    assert draft.status_code == 201, draft.text
    number = draft.json()["number"]
    for material_id, kind in (uploads or {}).items():
        uploaded = live.api(
            "POST",
            f"/applications/{number}/materials/{material_id}",
            token,
            data=_picture(kind),
            headers={"Content-Type": "image/png" if kind == "PNG" else "application/pdf"},
        )
        assert uploaded.status_code == 200, uploaded.text
    signed = live.api(
        "POST",
        f"/applications/{number}/signature",
        token,
        json={"handwriting_png": base64.b64encode(handwriting_png()).decode()},
    )
    assert signed.status_code == 200, signed.text
    submitted = live.api("POST", f"/applications/{number}/submit", token)
    assert submitted.status_code == 200, submitted.text
    return dict(submitted.json())


def _file_weather_certificate_for_review(live: LiveConsole) -> tuple[str, str]:
    """A citizen files a 气象证明 for today: the rule DATE_IN_PAST does not hold, so it goes
    to the weather bureau's reviewers. (number, citizen token)"""
    _user, token = live.citizen(level="face")
    submitted = _sign_and_submit(
        live,
        token,
        {
            "matter_code": "PY-QXJ-QXZM",
            "form": {
                "date": local_day(utcnow()).isoformat(),
                "address": "番禺区南村镇兴业路",
                "longitude": 113.39,
                "latitude": 23.0,
                "purpose": "保险理赔",
            },
        },
    )
    assert submitted["status"] == "accepted", submitted
    return submitted["number"], token


def test_a_reviewer_approves_from_the_desk_and_the_wallet_holds_the_sealed_licence(
    live_console: LiveConsole, new_page: Any
) -> None:
    number, citizen_token = _file_weather_certificate_for_review(live_console)
    page = new_page()
    login(page, live_console, "reviewer.weather")
    page.goto(live_console.url("/console/review"))
    row = page.locator(f"tr[data-application='{number}']")
    # Filed today with a statutory limit of 5 working days: all 5 are left.
    assert row.locator("[data-left]").inner_text() == "剩余 5 个工作日"
    assert "（即办）" in row.inner_text()  # the 气象证明 is promised at once
    look_at(page, "review-queue")
    # Unclaimed: listed under 未认领, not under 我认领的.
    page.get_by_role("link", name="我认领的").click()
    assert page.locator(f"tr[data-application='{number}']").count() == 0
    page.get_by_role("link", name="未认领").click()
    page.get_by_role("button", name=f"认领 {number}").click()
    page.get_by_text("已认领").wait_for()
    assert page.locator("[data-assignee]").inner_text() == "气象局审批人员"

    failing = page.locator("tr[data-rule='DATE_IN_PAST']")
    assert "证明日期早于申请当日" in failing.inner_text()
    assert "✗ 不符合" in failing.locator(".tag").inner_text()
    assert local_day(utcnow()).isoformat() in failing.inner_text()  # the input the rule read
    assert page.locator(".review-reasons li").count() >= 1  # why it went to review
    applicant = page.locator("[data-applicant]").inner_text()
    assert applicant.startswith("*四（") and "*" * 10 in applicant  # masked name and ID
    assert "保险理赔" in page.locator(".facts").first.inner_text()  # the form, under its titles
    assert "计时中" in page.locator("[data-clock]").inner_text()
    look_at(page, "review-application")

    page.get_by_role("button", name="准予许可（加盖电子印章）").click()
    page.get_by_text("已准予许可").wait_for()
    assert page.locator("[data-status]").get_attribute("data-status") == "approved"
    licence_number = page.locator("[data-licence]").get_attribute("data-licence")
    assert licence_number
    assert "准予许可（加盖电子印章） → 准予许可" in page.locator("table").last.inner_text()

    wallet = live_console.api("GET", "/me/licences", citizen_token)
    assert wallet.status_code == 200, wallet.text
    held = [item for item in wallet.json()["items"] if item["number"] == licence_number]
    assert len(held) == 1
    page.get_by_role("link", name="公开核验页").click()
    assert page.locator("[data-status]").get_attribute("data-status") == "valid"
    assert "番禺区气象局" in page.locator(".facts").inner_text()


def test_a_rejection_needs_its_reason_beside_the_field(
    live_console: LiveConsole, new_page: Any
) -> None:
    number, citizen_token = _file_weather_certificate_for_review(live_console)
    page = new_page()
    login(page, live_console, "reviewer.weather")
    page.goto(live_console.url(f"/console/review/{number}"))
    page.get_by_role("button", name="认领").click()
    page.get_by_text("已认领").wait_for()
    page.get_by_role("button", name="不予许可").click()
    assert page.locator("#reject-reason-error").inner_text() == "请填写理由"
    assert page.locator("#reject-reason").get_attribute("aria-invalid") == "true"
    assert page.locator("[data-status]").get_attribute("data-status") == "under_review"
    look_at(page, "review-reason-missing")

    reason = "证明日期须早于申请当日，请改期后重新申请"
    page.get_by_label("不予许可理由（将告知申请人）").fill(reason)
    page.get_by_role("button", name="不予许可").click()
    page.get_by_text("已作出不予许可决定").wait_for()
    assert page.locator("[data-status]").get_attribute("data-status") == "rejected"
    assert reason in page.locator("table").last.inner_text()  # the history keeps the reason
    mine = live_console.api("GET", f"/applications/{number}", citizen_token)
    assert mine.json()["status"] == "rejected"
    assert mine.json()["history"][-1]["reason"] == reason


def test_a_transfer_then_a_supplement_request_naming_the_materials(
    live_console: LiveConsole, new_page: Any
) -> None:
    number, citizen_token = _file_weather_certificate_for_review(live_console)
    with live_console.app.app_context():
        session = get_session()
        weather = session.scalars(select(Department).where(Department.code == "PY-QXJ")).one()
        create_staff(
            session,
            username="reviewer.weather.second",
            display_name="气象局第二审查人",
            password=DEMO_PASSWORD,
            grants=[(StaffRole.REVIEWER, None, weather.id)],
            actor=Actor.system(),
            now=utcnow(),
        )
        session.commit()
    page = new_page()
    login(page, live_console, "reviewer.weather")
    page.goto(live_console.url(f"/console/review/{number}"))
    page.get_by_role("button", name="认领").click()
    page.get_by_label("转交给").select_option(label="气象局第二审查人")
    page.get_by_label("转交说明（可不填）").fill("请第二审查人核实观测资料")
    page.get_by_role("button", name="转交", exact=True).click()
    page.get_by_text("已转交").wait_for()
    assert page.locator("[data-assignee]").inner_text() == "气象局第二审查人"
    assert page.get_by_role("button", name="不予许可").count() == 0  # no longer mine to decide

    second = new_page()
    login(second, live_console, "reviewer.weather.second")
    second.goto(live_console.url("/console/review?view=mine"))
    second.get_by_role("link", name=number).click()
    second.get_by_label("申请人身份证明（实名认证后免交）").check()
    second.get_by_role("button", name="一次性告知补正").click()
    assert second.locator("#supplement-reason-error").inner_text() == "请填写理由"
    assert second.get_by_label("申请人身份证明（实名认证后免交）").is_checked()  # kept
    second.get_by_label("补正内容（一次性告知全部需补正的内容）").fill("请核对证明日期")
    second.get_by_role("button", name="一次性告知补正").click()
    second.get_by_text("已一次性告知补正").wait_for()
    assert second.locator("[data-status]").get_attribute("data-status") == "supplement_requested"
    assert "暂停计时" in second.locator("[data-clock]").inner_text()

    mine = live_console.api("GET", f"/applications/{number}", citizen_token).json()
    assert mine["status"] == "supplement_requested"
    assert mine["history"][-1]["reason"] == (
        "请补正以下材料：申请人身份证明（实名认证后免交）。请核对证明日期"
    )


def test_another_department_gets_a_403_page(live_console: LiveConsole, new_page: Any) -> None:
    number, _token = _file_weather_certificate_for_review(live_console)
    page = new_page()
    login(page, live_console, "reviewer.water")
    response = page.goto(live_console.url(f"/console/review/{number}"))
    assert response is not None and response.status == 403
    assert "无权" in page.locator("main").inner_text()
    assert number not in page.locator("main").inner_text()
    # Nor can it act on it (a POST with a valid session token is refused the same way).
    csrf = page.locator("meta[name='csrf-token']").get_attribute("content")
    claimed = page.request.post(
        live_console.url(f"/console/review/{number}/claim"), headers={"X-CSRFToken": csrf}
    )
    assert claimed.status == 403
    page.goto(live_console.url("/console/review"))
    assert page.locator(f"tr[data-application='{number}']").count() == 0
    with live_console.app.app_context():
        application = (
            get_session().scalars(select(Application).where(Application.number == number)).one()
        )
        assert application.status == "accepted" and application.assignee_staff_id is None

    clerk = new_page()
    login(clerk, live_console, "clerk.demo")
    denied = clerk.goto(live_console.url("/console/review"))
    assert denied is not None and denied.status == 403


def _bind_to_an_enterprise(live: LiveConsole, user_id: int) -> int:
    """Set-up: the citizen is the legal representative of a registered (存续) enterprise."""
    with live.app.app_context():
        session = get_session()
        bound = select(EnterpriseBinding.enterprise_id)
        enterprise = session.scalars(
            select(RegistryEnterprise)
            .where(
                RegistryEnterprise.status == RegistryStatus.EXISTING,
                RegistryEnterprise.id.not_in(bound),
            )
            .order_by(RegistryEnterprise.id)
        ).first()
        assert enterprise is not None
        # The registry names this citizen (their ID number's index): the access guard refuses
        # a legal representative the registry does not name.
        user = session.get_one(User, user_id)
        enterprise.legal_rep_id_index = user.id_number_index
        session.add(
            EnterpriseBinding(
                user_id=user_id,
                enterprise_id=enterprise.id,
                role=BindingRole.LEGAL_REPRESENTATIVE,
                status=BindingStatus.ACTIVE,
            )
        )
        session.commit()
        return enterprise.id


def test_the_inspections_of_commitment_permits(live_console: LiveConsole, new_page: Any) -> None:
    user, token = live_console.citizen(level="face")
    enterprise_id = _bind_to_an_enterprise(live_console, user.id)
    submitted = _sign_and_submit(
        live_console,
        token,
        {
            "matter_code": "PY-SWJ-PSXK",
            "enterprise_id": enterprise_id,
            "form": {
                "outlet_address": "番禺区石碁镇工业路8号",
                "longitude": 113.44,
                "latitude": 22.98,
                "daily_volume_m3": 120,
                "cod_mg_l": 300,
                "nh3n_mg_l": 25,
                "ss_mg_l": 200,
                "commitment": True,
            },
        },
        uploads={"drainage_plan": "PNG", "water_quality_report": "PDF"},
    )
    number = submitted["number"]
    page = new_page()
    login(page, live_console, "reviewer.water")
    if submitted["status"] != "approved":
        # The shared data could not settle it: the water bureau's reviewer approves it.
        page.goto(live_console.url(f"/console/review/{number}"))
        page.get_by_role("button", name="认领").click()
        page.get_by_role("button", name="准予许可（加盖电子印章）").click()
        page.get_by_text("已准予许可").wait_for()
    # The materials are previewed inline, from the console's scoped route.
    page.goto(live_console.url(f"/console/review/{number}"))
    image = page.locator("img.material-preview")
    image.wait_for()
    assert page.evaluate(
        "(img) => img.complete && img.naturalWidth === 120", image.element_handle()
    )
    pdf_url = live_console.url(str(page.locator("iframe.material-preview").get_attribute("src")))
    pdf = page.request.get(pdf_url)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    look_at(page, "review-materials")

    page.goto(live_console.url("/console/review/inspections"))
    task = page.locator(f"section[data-inspection='{number}']")
    assert task.locator("[data-inspection-status]").inner_text() == "待核查"
    assert "城镇污水排入排水管网许可" in task.inner_text()
    look_at(page, "review-inspections")

    task.get_by_role("button", name="责令限期整改").click()
    task = page.locator(f"section[data-inspection='{number}']")
    assert "请填写整改要求" in task.inner_text()
    assert page.locator(".field-error").count() == 2  # the note and the date, of this task only
    task.get_by_label("整改要求").fill("排放口标识缺失，限期设置")
    task.get_by_label("整改期限").fill((local_day(utcnow()) + dt.timedelta(days=30)).isoformat())
    task.get_by_role("button", name="责令限期整改").click()
    page.get_by_text("已责令限期整改").wait_for()
    task = page.locator(f"section[data-inspection='{number}']")
    assert task.locator("[data-inspection-status]").inner_text() == "整改中"
    task.get_by_label("核查意见").fill("已整改到位，承诺属实")
    task.get_by_role("button", name="核查属实").click()
    page.get_by_text("已记录：核查属实").wait_for()
    assert page.locator(f"section[data-inspection='{number}']").count() == 0  # closed
    with live_console.app.app_context():
        inspection = (
            get_session()
            .scalars(select(Inspection).join(Application).where(Application.number == number))
            .one()
        )
        assert inspection.status == "confirmed"
        assert inspection.note == "已整改到位，承诺属实"

    other = new_page()
    login(other, live_console, "reviewer.weather")
    refused = other.request.get(live_console.url("/console/review/inspections"))
    assert number not in refused.text()
    assert other.request.get(pdf_url).status == 403  # another department's material

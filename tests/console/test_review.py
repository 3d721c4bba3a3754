"""The reviewer desk in the browser: an application that fell to review is found in the
department's queue, its rule results read, and approved with the seal, and the applicant's
wallet holds the sealed licence; a rejection needs its reason; another department cannot
open it."""

from __future__ import annotations

import base64
from typing import Any

from app.calendar import local_day
from app.db import utcnow
from tests.console.conftest import LiveConsole, login, look_at
from tests.factories.seals import handwriting_png


def _file_weather_certificate_for_review(live: LiveConsole) -> tuple[str, str]:
    """A citizen files a 气象证明 for today: the rule DATE_IN_PAST does not hold, so it goes
    to the weather bureau's reviewers. (number, citizen token)"""
    _user, token = live.citizen(level="face")
    draft = live.api(
        "POST",
        "/applications",
        token,
        json={
            "matter_code": "PY-QXJ-QXZM",
            "submit": False,
            "form": {
                "date": local_day(utcnow()).isoformat(),
                "address": "番禺区南村镇兴业路",
                "longitude": 113.39,
                "latitude": 23.0,
                "purpose": "保险理赔",
            },
        },
    )
    assert draft.status_code == 201, draft.text
    number = draft.json()["number"]
    signed = live.api(
        "POST",
        f"/applications/{number}/signature",
        token,
        json={"handwriting_png": base64.b64encode(handwriting_png()).decode()},
    )
    assert signed.status_code == 200, signed.text
    submitted = live.api("POST", f"/applications/{number}/submit", token)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "accepted", submitted.json()
    return number, token


def test_a_reviewer_approves_from_the_desk_and_the_wallet_holds_the_sealed_licence(
    live_console: LiveConsole, new_page: Any
) -> None:
    number, citizen_token = _file_weather_certificate_for_review(live_console)
    page = new_page()
    login(page, live_console, "reviewer.weather")
    page.goto(live_console.url("/console/review"))
    row = page.locator(f"tr[data-application='{number}']")
    assert row.is_visible()
    look_at(page, "review-queue")
    row.get_by_role("link", name=number).click()
    failing = page.locator("tr[data-rule='DATE_IN_PAST']")
    assert "证明日期早于申请当日" in failing.inner_text()
    assert "✗" in failing.inner_text()
    page.get_by_role("button", name="认领").click()
    page.get_by_text("已认领").wait_for()
    look_at(page, "review-application")
    page.get_by_role("button", name="准予许可（加盖电子印章）").click()
    page.get_by_text("已准予许可").wait_for()
    licence_number = page.locator("[data-licence]").get_attribute("data-licence")
    assert licence_number

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
    number, _token = _file_weather_certificate_for_review(live_console)
    page = new_page()
    login(page, live_console, "reviewer.weather")
    page.goto(live_console.url(f"/console/review/{number}"))
    page.get_by_role("button", name="认领").click()
    page.get_by_role("button", name="不予许可").click()
    assert page.locator(".field-error").inner_text() == "请填写理由"
    look_at(page, "review-reason-missing")
    page.get_by_label("理由（将告知申请人）").fill("证明日期须早于申请当日，请改期后重新申请")
    page.get_by_role("button", name="不予许可").click()
    page.get_by_text("已作出不予许可决定").wait_for()
    assert page.locator("[data-status]").get_attribute("data-status") == "rejected"


def test_another_department_cannot_open_the_application(
    live_console: LiveConsole, new_page: Any
) -> None:
    number, _token = _file_weather_certificate_for_review(live_console)
    page = new_page()
    login(page, live_console, "reviewer.water")
    response = page.goto(live_console.url(f"/console/review/{number}"))
    assert response is not None and response.status == 404
    page.goto(live_console.url("/console/review"))
    assert page.locator(f"tr[data-application='{number}']").count() == 0
    page.goto(live_console.url("/console/review/inspections"))
    look_at(page, "review-inspections")
    clerk = new_page()
    login(clerk, live_console, "clerk.demo")
    denied = clerk.goto(live_console.url("/console/review"))
    assert denied is not None and denied.status == 403

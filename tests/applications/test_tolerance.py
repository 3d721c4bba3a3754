"""容缺受理 (排水许可): the water-quality report may follow within the promised working days; the
reviewer cannot approve before it is in; the applicant is reminded the day before; a case whose
promise runs out ends by itself."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.applications import tolerance
from app.applications.models import Application
from app.calendar import deadline
from app.notify.models import NotificationOutbox
from tests.applications.conftest import (
    accepted_without_the_report,
    upload_png,
)


def _accepted_without_the_report(client, session, district, citizen_headers):  # type: ignore[no-untyped-def]
    headers = citizen_headers(district.legal_rep)
    number = accepted_without_the_report(client, headers, district)
    application = session.scalars(select(Application).where(Application.number == number)).one()
    return number, headers, application


def _messages(session, application) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        n.data["phrase2"]
        for n in session.scalars(
            select(NotificationOutbox)
            .where(NotificationOutbox.source_id == application.id)
            .order_by(NotificationOutbox.id)
        )
    ]


def test_the_missing_report_is_promised_and_approval_waits_for_it(
    client, session, district, citizen_headers, staff_headers
):
    number, headers, application = _accepted_without_the_report(
        client, session, district, citizen_headers
    )
    # Five working days from acceptance (the matter sets none: the default).
    assert application.supply_due == deadline(application.submitted_at, 5)
    shown = client.get(f"/api/v1/applications/{number}", headers=headers).json
    assert shown["history"][-1]["reason"].startswith("容缺受理：排水水质检测报告待补交（")
    assert shown["actions"] == ["supply", "withdraw"]
    reviewer = staff_headers(district.reviewers["PY-SWJ"])
    base = f"/api/v1/review/applications/{number}"
    client.post(f"{base}/claim", headers=reviewer)
    early = client.post(f"{base}/approve", json={}, headers=reviewer)
    assert early.status_code == 409 and early.json["code"] == "MATERIALS_STILL_MISSING"

    # Only what is missing may come now: the plan already given stays as it is.
    replaced = upload_png(client, headers, number, "drainage_plan")
    assert replaced.status_code == 409 and replaced.json["code"] == "MATERIALS_LOCKED"
    supplied = upload_png(client, headers, number, "water_quality_report")
    assert supplied.status_code == 200, supplied.json
    assert supplied.json["supply_due"] is None and supplied.json["status"] == "under_review"
    assert supplied.json["history"][-1]["action"] == "supply"

    approved = client.post(f"{base}/approve", json={}, headers=reviewer)
    assert approved.status_code == 200 and approved.json["status"] == "approved"


def test_the_applicant_is_reminded_once_the_day_before(client, session, district, citizen_headers):
    _number, _headers, application = _accepted_without_the_report(
        client, session, district, citizen_headers
    )
    due = application.supply_due
    assert tolerance.remind(session, now=due - dt.timedelta(days=2)) == 0
    assert tolerance.remind(session, now=due - dt.timedelta(hours=20)) == 1
    assert tolerance.remind(session, now=due - dt.timedelta(hours=10)) == 0  # once
    session.commit()
    assert _messages(session, application) == ["已受理", "待补交材料"]


def test_a_case_whose_promise_ran_out_ends_by_itself(client, session, district, citizen_headers):
    number, headers, application = _accepted_without_the_report(
        client, session, district, citizen_headers
    )
    due = application.supply_due
    assert tolerance.lapse(session, now=due - dt.timedelta(minutes=1)) == 0
    assert tolerance.lapse(session, now=due + dt.timedelta(minutes=1)) == 1
    session.commit()

    body = client.get(f"/api/v1/applications/{number}", headers=headers).json
    assert body["status"] == "terminated" and body["status_label"] == "终止办理"
    last = body["history"][-1]
    assert last["action"] == "lapse" and last["reason"] == "容缺材料逾期未补交：排水水质检测报告"
    assert body["decided_at"] and body["supply_due"] is None
    assert _messages(session, application)[-1] == "终止办理"
    late = upload_png(client, headers, number, "water_quality_report")
    assert late.status_code == 409 and late.json["code"] == "MATERIALS_LOCKED"
    assert tolerance.lapse(session, now=due + dt.timedelta(days=1)) == 0

"""告知承诺: a permit granted on commitment gets an inspection task; a false commitment
revokes the licence and keeps the holder from commitment approval for the configured period."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.applications.models import CommitmentBreach, Inspection
from app.calendar import add_working_days
from app.db import utcnow
from tests.applications.conftest import apply_body, drainage_form, today


def _file(client, headers, district):
    body = {
        "matter_code": "PY-SWJ-PSXK",
        "form": drainage_form(),
        "enterprise_id": district.enterprise.id,
    }
    return apply_body(client, body, headers=headers).json


def test_an_instant_permit_on_commitment_gets_an_inspection_within_the_configured_days(
    client, session, district, citizen_headers, staff_headers
):
    before = utcnow()
    approved = _file(client, citizen_headers(district.legal_rep), district)
    assert approved["status"] == "approved"
    inspection = session.scalars(select(Inspection)).one()
    assert inspection.status == "open"
    # PY-SWJ-PSXK: 20 working days.
    assert add_working_days(before, 20) <= inspection.due_at <= add_working_days(utcnow(), 20)

    water = staff_headers(district.reviewers["PY-SWJ"])
    listed = client.get("/api/v1/review/inspections", headers=water).json
    assert [i["application_number"] for i in listed["items"]] == [approved["number"]]
    urban = staff_headers(district.reviewers["PY-CGJ"])
    assert client.get("/api/v1/review/inspections", headers=urban).json["items"] == []
    assert (
        client.post(
            f"/api/v1/review/inspections/{inspection.id}/confirm", json={}, headers=urban
        ).status_code
        == 404
    )

    by = (today() + dt.timedelta(days=15)).isoformat()
    rectifying = client.post(
        f"/api/v1/review/inspections/{inspection.id}/rectify",
        json={"note": "预处理设施未按承诺安装", "by": by},
        headers=water,
    ).json
    assert rectifying["status"] == "rectifying" and rectifying["rectify_by"]
    confirmed = client.post(
        f"/api/v1/review/inspections/{inspection.id}/confirm",
        json={"note": "整改完成"},
        headers=water,
    ).json
    assert confirmed["status"] == "confirmed"
    again = client.post(
        f"/api/v1/review/inspections/{inspection.id}/revoke", json={"note": "x" * 3}, headers=water
    )
    assert again.status_code == 409 and again.json["code"] == "INSPECTION_CLOSED"


def test_a_false_commitment_revokes_the_licence_and_excludes_the_holder(
    client, session, district, citizen_headers, staff_headers
):
    applicant = citizen_headers(district.legal_rep)
    approved = _file(client, applicant, district)
    inspection = session.scalars(select(Inspection)).one()
    water = staff_headers(district.reviewers["PY-SWJ"])
    revoked = client.post(
        f"/api/v1/review/inspections/{inspection.id}/revoke",
        json={"note": "实际排放量远超承诺"},
        headers=water,
    )
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    licence_id = approved["licence"]["id"]
    assert (
        client.get(f"/api/v1/me/licences/{licence_id}", headers=applicant).json["status"]
        == "revoked"
    )
    breach = session.scalars(select(CommitmentBreach)).one()
    assert breach.enterprise_id == district.enterprise.id
    assert breach.excluded_until > utcnow() + dt.timedelta(days=364)

    # The next commitment application of that enterprise goes to a reviewer, naming why.
    next_one = _file(client, applicant, district)
    assert next_one["status"] == "accepted"
    failing = [r["id"] for r in next_one["decision"]["results"] if r["result"] != "P"]
    assert failing == ["NO_FALSE_COMMITMENT"]


def test_a_check_left_undecided_past_its_day_is_marked_overdue_by_the_sweep(
    client, session, district, citizen_headers, staff_headers
):
    from app.applications import inspections

    _file(client, citizen_headers(district.legal_rep), district)
    inspection = session.scalars(select(Inspection)).one()
    water = staff_headers(district.reviewers["PY-SWJ"])
    url = "/api/v1/review/inspections"

    assert inspections.mark_overdue(session, now=inspection.due_at - dt.timedelta(minutes=1)) == 0
    assert inspections.mark_overdue(session, now=inspection.due_at + dt.timedelta(minutes=1)) == 1
    assert inspections.mark_overdue(session, now=inspection.due_at + dt.timedelta(days=1)) == 0
    session.commit()
    assert client.get(url, headers=water).json["items"][0]["overdue"] is True

    # A rectification gives a new day: not overdue until that one passes too.
    by = today() + dt.timedelta(days=10)
    rectifying = client.post(
        f"{url}/{inspection.id}/rectify",
        json={"note": "限期整改", "by": by.isoformat()},
        headers=water,
    ).json
    assert rectifying["overdue"] is False
    session.expire_all()
    inspection = session.get(Inspection, inspection.id)
    assert inspection.rectify_by is not None
    assert inspections.mark_overdue(session, now=inspection.rectify_by - dt.timedelta(hours=1)) == 0
    assert inspections.mark_overdue(session, now=inspection.rectify_by + dt.timedelta(hours=1)) == 1
    session.commit()
    assert client.get(url, headers=water).json["items"][0]["overdue"] is True

    # Deciding ends it; a decided check is never overdue.
    confirmed = client.post(f"{url}/{inspection.id}/confirm", json={}, headers=water).json
    assert confirmed["status"] == "confirmed" and confirmed["overdue"] is False


def test_the_periodic_sweeps_mark_overdue_checks(app, client, session, district, citizen_headers):
    from app.jobs.sweeps import PeriodicSweeps

    _file(client, citizen_headers(district.legal_rep), district)
    due = session.scalars(select(Inspection)).one().due_at
    session.commit()
    sweeps = PeriodicSweeps(
        app.extensions["db"].sessionmaker, config=app.config, interval_seconds=60, now_fn=utcnow
    )
    assert sweeps.run(due + dt.timedelta(hours=1)).inspections_overdue == 1
    session.expire_all()
    assert session.scalars(select(Inspection)).one().overdue is True

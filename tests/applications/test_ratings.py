"""好差评 for applications: the applicant rates a decided application once, within the window;
a bad rating opens a follow-up for the department that decided it, closed by its reviewers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.applications.models import Application
from app.audit.models import AuditEntry
from app.ratings.models import RatingFollowUp
from tests.applications.conftest import advert_form, apply, weather_form


def _rate(client, headers, number, level="very_satisfied", comment=None):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/applications/{number}/rating",
        json={"level": level, "comment": comment},
        headers=headers,
    )


def test_a_decided_application_is_rated_once_by_its_applicant(
    client, session, district, citizen_headers
):
    headers = citizen_headers(district.citizen)
    number = apply(client, headers, "PY-QXJ-QXZM", weather_form()).json["number"]

    rated = _rate(client, headers, number)
    assert rated.status_code == 201, rated.json
    application = session.scalars(select(Application)).one()
    assert rated.json["application_id"] == application.id and rated.json["ticket_id"] is None
    assert rated.json["department_id"] == district.departments["PY-QXJ"].id
    assert rated.json.get("follow_up_due_at") is None  # a good rating opens nothing
    assert client.get(f"/api/v1/applications/{number}/rating", headers=headers).json["id"]
    again = _rate(client, headers, number, "satisfied")
    assert again.status_code == 409 and again.json["code"] == "ALREADY_RATED"
    stranger = _rate(client, citizen_headers(district.legal_rep), number)
    assert stranger.status_code == 404 and stranger.json["code"] == "APPLICATION_NOT_FOUND"
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "rating.created")).one()
    assert audited.subject_type == "application" and "comment" not in audited.details


def test_an_undecided_or_old_application_cannot_be_rated(
    client, session, district, citizen_headers
):
    headers = citizen_headers(district.legal_rep)
    pending = apply(
        client, headers, "PY-CGJ-LSGG", advert_form(width_m=6, height_m=5), district.enterprise.id
    ).json
    assert pending["status"] == "accepted"
    early = _rate(client, headers, pending["number"])
    assert early.status_code == 409 and early.json["code"] == "APPLICATION_NOT_RATABLE"

    decided = apply(client, headers, "PY-CGJ-LSGG", advert_form(), district.enterprise.id).json
    application = session.scalars(
        select(Application).where(Application.number == decided["number"])
    ).one()
    application.decided_at -= dt.timedelta(days=8)
    session.commit()
    late = _rate(client, headers, decided["number"])
    assert late.status_code == 409 and late.json["code"] == "RATING_PERIOD_OVER"


def test_a_bad_rating_is_followed_up_by_the_deciding_department(
    client, session, district, citizen_headers, staff_headers, create_staff
):
    from app.identity.models import StaffRole

    headers = citizen_headers(district.citizen)
    number = apply(client, headers, "PY-QXJ-QXZM", weather_form()).json["number"]
    rated = _rate(client, headers, number, "very_dissatisfied", "证明上的站点离我家太远")
    assert rated.status_code == 201 and rated.json["follow_up_due_at"]
    follow_up = session.scalars(select(RatingFollowUp)).one()
    department_id = district.departments["PY-QXJ"].id
    assert follow_up.department_id == department_id and follow_up.hall_id is None

    own = staff_headers(district.reviewers["PY-QXJ"])
    other = staff_headers(district.reviewers["PY-CGJ"])
    listed = client.get(f"/api/v1/departments/{department_id}/rating-follow-ups", headers=own)
    assert listed.status_code == 200 and [f["id"] for f in listed.json["items"]] == [follow_up.id]
    assert listed.json["items"][0]["rating"]["comment"] == "证明上的站点离我家太远"
    assert (
        client.get(
            f"/api/v1/departments/{department_id}/rating-follow-ups", headers=other
        ).status_code
        == 403
    )
    close = f"/api/v1/rating-follow-ups/{follow_up.id}/close"
    body = {"rectification": "已向申请人说明就近站点的选取规则，并在证明中注明距离"}
    assert client.post(close, json=body, headers=other).status_code == 403
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, None, None)])
    session.commit()
    assert client.post(close, json=body, headers=staff_headers(manager)).status_code == 403
    closed = client.post(close, json=body, headers=own)
    assert closed.status_code == 200 and closed.json["status"] == "closed"

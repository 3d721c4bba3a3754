"""The reviewer's path: the department's queue by deadline, claim, 补正 pausing the clock,
approval sealing the licence, scope, replaying decisions, licences shown and revoked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.applications import deadlines
from app.applications.models import Application
from app.audit.models import AuditEntry
from app.calendar import LOCAL_TZ
from app.db import utcnow
from app.licences.models import Licence
from app.matters.models import MatterParameter
from app.notify.models import NotificationOutbox
from app.seals.models import IssuedDocument, Seal, SealStatus, SealUse
from tests.applications.conftest import HANDWRITING, PNG, advert_form, apply_body
from tests.factories.seals import handwriting_png


def _file_for_review(client, district, citizen_headers, **changes):
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(width_m=6, height_m=5, **changes),
        "enterprise_id": district.enterprise.id,
    }
    answer = apply_body(client, body, headers=citizen_headers(district.legal_rep))
    assert answer.json["status"] == "accepted"
    return answer.json["number"]


def test_a_reviewer_claims_asks_for_supplement_and_approves_with_the_seal(
    client, session, district, citizen_headers, staff_headers
):
    number = _file_for_review(client, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    applicant = citizen_headers(district.legal_rep)
    base = f"/api/v1/review/applications/{number}"

    queue = client.get("/api/v1/review/applications", headers=reviewer).json
    assert [a["number"] for a in queue["items"]] == [number]
    detail = client.get(base, headers=reviewer).json
    assert detail["actions"] == ["claim"]
    assert detail["decision"]["results"][2]["explanation"].endswith("30 ≤ 20㎡ ✗")

    # Deciding without holding it is refused; so is a supplement request without a reason.
    assert client.post(f"{base}/approve", json={}, headers=reviewer).json["code"] == "NOT_ASSIGNEE"
    assert client.post(f"{base}/claim", headers=reviewer).json["status"] == "under_review"
    assert client.post(f"{base}/claim", headers=reviewer).status_code == 409
    no_reason = client.post(f"{base}/request-supplement", json={}, headers=reviewer)
    assert no_reason.status_code == 422

    due_before = session.get(Application, _id(session, number)).statutory_due
    paused = client.post(
        f"{base}/request-supplement", json={"reason": "请补充广告牌结构安全说明"}, headers=reviewer
    ).json
    assert paused["status"] == "supplement_requested" and paused["statutory_due"] is None
    resumed = client.post(
        f"/api/v1/applications/{number}/resubmit", json={}, headers=applicant
    ).json
    assert resumed["status"] == "under_review"
    session.expire_all()
    due_after = session.get(Application, _id(session, number)).statutory_due
    assert due_after >= due_before  # the waiting day does not count against the department

    approved = client.post(
        f"{base}/approve", json={"reason": "经现场核查符合安全要求"}, headers=reviewer
    )
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved" and approved.json["licence"]["number"]
    assert [e["action"] for e in approved.json["history"]] == [
        "submit",
        "accept",
        "claim",
        "request_supplement",
        "resubmit",
        "approve",
    ]
    wallet = client.get("/api/v1/me/licences", headers=applicant).json
    assert [item["number"] for item in wallet["items"]] == [approved.json["licence"]["number"]]


@pytest.mark.parametrize(
    ("unusable", "status", "code", "reason"),
    [
        ({"status": SealStatus.SUSPENDED}, 409, "SEAL_NOT_USABLE", "suspended"),
        ({"authorised_roles": []}, 403, "SEAL_USE_FORBIDDEN", "not_authorised"),
    ],
    ids=["suspended", "not-for-reviewers"],
)
def test_an_approval_the_seal_refuses_leaves_the_case_under_review(
    client, session, district, citizen_headers, staff_headers, unusable, status, code, reason
):
    # The case was moved to 准予许可 before the seal was tried, and the refusal's records were
    # committed with it: approved, with no licence, no notice, and no way to approve again.
    number = _file_for_review(client, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    applicant = citizen_headers(district.legal_rep)
    base = f"/api/v1/review/applications/{number}"
    assert client.post(f"{base}/claim", headers=reviewer).status_code == 200
    seal = _seal_of(session, district, "PY-CGJ")
    usable = {name: getattr(seal, name) for name in unusable}
    for name, value in unusable.items():
        setattr(seal, name, value)
    session.commit()
    documents, notices = _count(session, IssuedDocument), _count(session, NotificationOutbox)

    refused = client.post(f"{base}/approve", json={"reason": "符合要求"}, headers=reviewer)

    assert refused.status_code == status and refused.json["code"] == code, refused.json
    session.expire_all()
    application = session.get(Application, _id(session, number))
    assert application.status == "under_review" and application.decided_at is None
    shown = client.get(f"/api/v1/applications/{number}", headers=applicant).json
    assert shown["status"] == "under_review" and shown["licence"] is None
    assert [e["action"] for e in shown["history"]] == ["submit", "accept", "claim"]
    assert _count(session, Licence) == 0 and _count(session, IssuedDocument) == documents
    assert _count(session, NotificationOutbox) == notices  # the applicant is told nothing
    # What the refusal exists to keep: the seal-use log and the audit say who was refused.
    uses = session.scalars(select(SealUse).where(SealUse.seal_id == seal.id)).all()
    assert [(u.outcome, u.reason, u.actor_id) for u in uses if u.outcome == "refused"] == [
        ("refused", reason, district.reviewers["PY-CGJ"].id)
    ]
    assert _audited(session, "seal.use_refused") == 1
    assert _audited(session, "application.approved") == 0

    # The seal usable again, the same reviewer approves, once.
    for name, value in usable.items():
        setattr(seal, name, value)
    session.commit()
    approved = client.post(f"{base}/approve", json={"reason": "符合要求"}, headers=reviewer)
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved" and approved.json["licence"]["number"]
    assert [e["action"] for e in approved.json["history"]] == [
        "submit",
        "accept",
        "claim",
        "approve",
    ]
    assert _count(session, Licence) == 1 and _audited(session, "application.approved") == 1
    assert _count(session, NotificationOutbox) == notices + 1


def _seal_of(session, district, department: str) -> Seal:
    return session.scalars(
        select(Seal).where(Seal.department_id == district.departments[department].id)
    ).one()


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _audited(session, action: str) -> int:
    return session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    )


def test_a_form_corrected_at_resubmission_is_signed_again(
    client, session, district, citizen_headers, staff_headers
):
    # 补正 with a corrected form kept the signature made over the old one: the file then held
    # a signed application form that no longer said what the applicant had asked for.
    from app.seals.models import IssuedDocument
    from tests.applications.conftest import HANDWRITING

    number = _file_for_review(client, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    applicant = citizen_headers(district.legal_rep)
    base = f"/api/v1/review/applications/{number}"
    client.post(f"{base}/claim", headers=reviewer)
    client.post(
        f"{base}/request-supplement", json={"reason": "广告面积超出临时广告上限"}, headers=reviewer
    )
    before = session.get(Application, _id(session, number))
    old_document, old_form = before.form_document_id, dict(before.form)
    corrected = {**old_form, "width_m": 4, "height_m": 4}

    unsigned = client.post(
        f"/api/v1/applications/{number}/resubmit", json={"form": corrected}, headers=applicant
    )
    assert unsigned.status_code == 422, unsigned.json
    assert unsigned.json["code"] == "APPLICATION_NOT_SIGNED"
    session.expire_all()
    unchanged = session.get(Application, _id(session, number))
    assert unchanged.status == "supplement_requested" and unchanged.form == old_form

    signed = client.post(
        f"/api/v1/applications/{number}/resubmit",
        json={"form": corrected, "handwriting_png": HANDWRITING},
        headers=applicant,
    )
    assert signed.status_code == 200, signed.json
    assert signed.json["status"] == "under_review"
    session.expire_all()
    after = session.get(Application, _id(session, number))
    assert after.form == corrected and after.form_document_id != old_document
    document = session.get(IssuedDocument, after.form_document_id)
    assert document.personal_signature and document.template == "application_form"

    # The same form again needs no new signature.
    client.post(f"{base}/request-supplement", json={"reason": "请补充现场照片"}, headers=reviewer)
    again = client.post(
        f"/api/v1/applications/{number}/resubmit", json={"form": corrected}, headers=applicant
    )
    assert again.status_code == 200, again.json


def _wear_off_the_face_check(session, district):
    district.legal_rep.face_verified_at = utcnow() - dt.timedelta(days=2)
    return lambda: setattr(district.legal_rep, "face_verified_at", utcnow())


def _suspend_the_seal(session, district):
    seal = _seal_of(session, district, "PY-CGJ")
    seal.status = SealStatus.SUSPENDED
    return lambda: setattr(seal, "status", SealStatus.ACTIVE)


@pytest.mark.parametrize(
    ("refuse", "status", "code", "audited"),
    [
        (_wear_off_the_face_check, 403, "IDENTITY_LEVEL_TOO_LOW", "identity.level_refused"),
        (_suspend_the_seal, 409, "SEAL_NOT_USABLE", "seal.use_refused"),
    ],
    ids=["face-check-worn-off", "seal-suspended"],
)
def test_a_resubmission_whose_signature_is_refused_changes_nothing(
    client, session, district, citizen_headers, staff_headers, refuse, status, code, audited
):
    # The case was resumed and the corrected form stored before the signature was refused,
    # and the refusal committed both: under review again, with a form nobody had signed.
    number = _file_for_review(client, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    applicant = citizen_headers(district.legal_rep)
    base = f"/api/v1/review/applications/{number}"
    client.post(f"{base}/claim", headers=reviewer)
    client.post(f"{base}/request-supplement", json={"reason": "面积超限，请改小"}, headers=reviewer)
    before = session.get(Application, _id(session, number))
    old_form, old_document = dict(before.form), before.form_document_id
    corrected = {**old_form, "width_m": 4, "height_m": 4}
    mend = refuse(session, district)
    session.commit()
    documents = _count(session, IssuedDocument)
    resubmission = {"form": corrected, "handwriting_png": HANDWRITING}

    refused = client.post(
        f"/api/v1/applications/{number}/resubmit", json=resubmission, headers=applicant
    )

    assert refused.status_code == status and refused.json["code"] == code, refused.json
    session.expire_all()
    unchanged = session.get(Application, _id(session, number))
    assert unchanged.status == "supplement_requested" and unchanged.statutory_due is None
    assert unchanged.form == old_form and unchanged.form_document_id == old_document
    shown = client.get(f"/api/v1/applications/{number}", headers=applicant).json
    assert [e["action"] for e in shown["history"]][-1] == "request_supplement"
    assert shown["signature"]["current"] is True  # what is filed is still what was signed
    assert _count(session, IssuedDocument) == documents
    assert _audited(session, audited) == 1

    mend()
    session.commit()
    resumed = client.post(
        f"/api/v1/applications/{number}/resubmit", json=resubmission, headers=applicant
    )
    assert resumed.status_code == 200, resumed.json
    assert resumed.json["status"] == "under_review" and resumed.json["signature"]["current"]
    session.expire_all()
    after = session.get(Application, _id(session, number))
    assert after.form == corrected and after.form_document_id != old_document
    approved = client.post(f"{base}/approve", json={"reason": "已改正"}, headers=reviewer)
    assert approved.status_code == 200 and approved.json["status"] == "approved", approved.json


def _id(session, number: str) -> int:
    return session.scalar(select(Application.id).where(Application.number == number))


def test_another_department_and_another_applicant_see_nothing(
    client, district, citizen_headers, staff_headers
):
    number = _file_for_review(client, district, citizen_headers)
    water = staff_headers(district.reviewers["PY-SWJ"])
    assert client.get("/api/v1/review/applications", headers=water).json["items"] == []
    hidden = client.get(f"/api/v1/review/applications/{number}", headers=water)
    assert hidden.status_code == 404 and hidden.json["code"] == "APPLICATION_NOT_FOUND"
    assert (
        client.post(f"/api/v1/review/applications/{number}/claim", headers=water).status_code == 404
    )
    other = client.get(f"/api/v1/applications/{number}", headers=citizen_headers(district.citizen))
    assert other.status_code == 404
    citizen_on_review = client.get(
        "/api/v1/review/applications", headers=citizen_headers(district.citizen)
    )
    assert citizen_on_review.status_code == 403


def test_transfer_only_to_a_reviewer_of_the_same_department(
    client, district, citizen_headers, staff_headers, create_staff, session
):
    from app.identity.models import StaffRole

    number = _file_for_review(client, district, citizen_headers)
    first = staff_headers(district.reviewers["PY-CGJ"])
    colleague = create_staff(grants=[(StaffRole.REVIEWER, None, district.departments["PY-CGJ"].id)])
    session.commit()
    base = f"/api/v1/review/applications/{number}"
    client.post(f"{base}/claim", headers=first)
    wrong = client.post(
        f"{base}/transfer", json={"to_staff_id": district.reviewers["PY-SWJ"].id}, headers=first
    )
    assert wrong.status_code == 422 and wrong.json["code"] == "TRANSFER_TARGET_INVALID"
    moved = client.post(f"{base}/transfer", json={"to_staff_id": colleague.id}, headers=first).json
    assert moved["assignee_staff_id"] == colleague.id
    assert client.post(f"{base}/reject", json={"reason": "x"}, headers=first).status_code == 409
    rejected = client.post(
        f"{base}/reject", json={"reason": "设置地点影响交通安全"}, headers=staff_headers(colleague)
    ).json
    assert rejected["status"] == "rejected"


def test_a_stored_decision_replays_the_same_even_after_the_limit_changes(
    client, session, district, citizen_headers, staff_headers
):
    number = _file_for_review(client, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    raised = client.put(
        "/api/v1/matters/PY-CGJ-LSGG/parameters/max_area_m2", json={"value": 40}, headers=reviewer
    )
    assert raised.status_code == 200
    assert {p["name"]: p["value"] for p in raised.json["items"]}["max_area_m2"] == 40
    replay = client.get(
        f"/api/v1/review/applications/{number}/decision/replay", headers=reviewer
    ).json
    assert replay["same"] is True and replay["replayed"]["outcome"] == "review"
    # New applications use the new limit: 30㎡ is now within it.
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(width_m=6, height_m=5),
        "enterprise_id": district.enterprise.id,
    }
    now_approved = apply_body(client, body, headers=citizen_headers(district.legal_rep)).json
    assert now_approved["status"] == "approved"
    assert now_approved["decision"]["parameters"]["max_area_m2"] == 40
    # Another department may not change this matter's limits; a wrong type is refused.
    water = staff_headers(district.reviewers["PY-SWJ"])
    assert (
        client.put(
            "/api/v1/matters/PY-CGJ-LSGG/parameters/max_area_m2", json={"value": 99}, headers=water
        ).status_code
        == 403
    )
    assert (
        client.put(
            "/api/v1/matters/PY-CGJ-LSGG/parameters/max_area_m2",
            json={"value": "big"},
            headers=reviewer,
        ).status_code
        == 422
    )
    assert session.scalar(select(MatterParameter.value)) == 40


def test_deadlines_skip_the_national_day_holiday_and_count_the_makeup_saturday(
    session, district, app
):
    from app.applications.service import Services, file, sign_draft, submit
    from app.integrations.shared_data import get_connectors
    from app.materials import service as materials
    from app.materials.storage import LocalFolderStorage
    from app.matters import catalogue
    from app.seals import get_seal_context
    from app.security import get_cipher

    # Wednesday 2026-09-30, 10:00: 1-7 October are holidays, Saturday 10 October is worked.
    submitted = dt.datetime(2026, 9, 30, 10, 0, tzinfo=LOCAL_TZ).astimezone(dt.UTC)
    form = {
        "project_name": "番禺区某住宅项目",
        "site_address": "番禺区南村镇某路1号",
        "volume_m3": 5000,
        "start_date": "2026-10-12",
        "end_date": "2026-12-12",
    }
    services = Services(get_seal_context(), get_connectors(session), get_cipher())
    application, _ = file(
        session,
        services,
        user=district.legal_rep,
        matter_code="PY-CGJ-JZLJ",
        form=form,
        enterprise_id=district.enterprise.id,
        submit_now=False,
        now=submitted,
    )
    content = catalogue.get_version(session, "PY-CGJ-JZLJ").content
    storage = LocalFolderStorage(Path(app.config["MATERIALS_STORAGE_DIR"]))
    for material in ("disposal_plan", "landfill_agreement", "transport_contract"):
        materials.attach_upload(
            session,
            storage,
            application,
            content,
            material,
            PNG,
            filename=None,
            user_id=district.legal_rep.id,
            max_bytes=10**6,
            now=submitted,
        )
    # Signed today (the seal's certificate is from today), submitted on the 30th.
    sign_draft(
        session,
        services,
        application,
        user=district.legal_rep,
        handwriting_png=handwriting_png(),
        now=utcnow(),
    )
    submit(session, services, application, user=district.legal_rep, now=submitted)
    # Promised 10 working days: 8, 9, 10 (Sat, make-up), 12-16, 19, 20 October.
    assert application.promised_due == dt.datetime(2026, 10, 21, tzinfo=LOCAL_TZ)
    # Statutory 20: through 3 November.
    assert application.statutory_due == dt.datetime(2026, 11, 4, tzinfo=LOCAL_TZ)
    assert (
        deadlines.mark_overdue(session, now=application.statutory_due - dt.timedelta(seconds=1))
        == 0
    )
    assert (
        deadlines.mark_overdue(session, now=application.statutory_due + dt.timedelta(seconds=1))
        == 1
    )
    session.refresh(application)
    assert application.overdue is True


def test_a_licence_is_shown_with_a_short_lived_qr_and_verifies_as_revoked_after_revocation(
    client, session, district, citizen_headers, staff_headers, app
):
    applicant = citizen_headers(district.legal_rep)
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(),
        "enterprise_id": district.enterprise.id,
    }
    licence_id = apply_body(client, body, headers=applicant).json["licence"]["id"]

    shown = client.post(f"/api/v1/me/licences/{licence_id}/show-code", headers=applicant)
    assert shown.status_code == 200
    token = shown.json["token"]
    verified = client.get(f"/api/v1/licences/verify/{token}").json
    assert verified["status"] == "valid" and verified["issuer"]
    assert verified["holder"] == district.enterprise.name
    assert (
        client.post(
            f"/api/v1/me/licences/{licence_id}/show-code", headers=citizen_headers(district.citizen)
        ).status_code
        == 404
    )
    forged = client.get("/api/v1/licences/verify/Lx.1.2.forged")
    assert forged.status_code == 404 and forged.json["code"] == "LICENCE_CODE_INVALID"

    water = staff_headers(district.reviewers["PY-SWJ"])
    assert (
        client.post(
            f"/api/v1/licences/{licence_id}/revoke", json={"reason": "不是本部门"}, headers=water
        ).status_code
        == 404
    )
    revoked = client.post(
        f"/api/v1/licences/{licence_id}/revoke",
        json={"reason": "核查发现设置地点与申报不符"},
        headers=staff_headers(district.reviewers["PY-CGJ"]),
    )
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    assert client.get(f"/api/v1/licences/verify/{token}").json["status"] == "revoked"
    document_code = revoked.json["document_code"]
    assert client.get(f"/api/v1/seals/verify/{document_code}").json["status"] == "revoked"
    again = client.post(f"/api/v1/me/licences/{licence_id}/show-code", headers=applicant)
    assert again.status_code == 409 and again.json["code"] == "LICENCE_NOT_SHOWABLE"


def test_a_licence_past_its_validity_verifies_as_expired(
    client, session, district, citizen_headers
):
    applicant = citizen_headers(district.legal_rep)
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(),
        "enterprise_id": district.enterprise.id,
    }
    licence_id = apply_body(client, body, headers=applicant).json["licence"]["id"]
    token = client.post(f"/api/v1/me/licences/{licence_id}/show-code", headers=applicant).json[
        "token"
    ]
    licence = session.get(Licence, licence_id)
    licence.valid_until = utcnow() - dt.timedelta(seconds=1)  # its 30 days have run out
    session.commit()
    assert client.get(f"/api/v1/licences/verify/{token}").json["status"] == "expired"
    assert (
        client.get(f"/api/v1/me/licences/{licence_id}", headers=applicant).json["status"]
        == "expired"
    )


def test_statistics_per_matter_count_instant_approvals_and_time_to_decision(
    client, district, citizen_headers, staff_headers
):
    applicant = citizen_headers(district.legal_rep)
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(),
        "enterprise_id": district.enterprise.id,
    }
    apply_body(client, body, headers=applicant)
    apply_body(client, body, headers=applicant)
    number = _file_for_review(client, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    client.post(f"/api/v1/review/applications/{number}/claim", headers=reviewer)
    client.post(
        f"/api/v1/review/applications/{number}/reject",
        json={"reason": "面积过大"},
        headers=reviewer,
    )
    figures = client.get("/api/v1/review/applications/statistics", headers=reviewer).json
    (advert,) = figures["items"]
    assert advert["matter_code"] == "PY-CGJ-LSGG"
    assert (advert["submitted"], advert["decided"], advert["approved_instantly"]) == (3, 3, 2)
    assert advert["rejected"] == 1 and advert["open"] == 0 and advert["overdue"] == 0
    assert advert["instant_share"] == pytest.approx(2 / 3)
    assert advert["median_hours_to_decision"] is not None
    water = staff_headers(district.reviewers["PY-SWJ"])
    assert client.get("/api/v1/review/applications/statistics", headers=water).json["items"] == []
    bad = client.get(
        "/api/v1/review/applications/statistics",
        query_string={"from": "2026-12-01", "to": "2026-11-01"},
        headers=reviewer,
    )
    assert bad.status_code == 422

"""The applicant signs before submitting: the application form (and, for 告知承诺 matters, the
commitment letter) in their own name after a face verification just now; a form changed
afterwards is signed again; nothing is submitted unsigned."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess

from sqlalchemy import func, select

from app.applications.models import Application
from app.audit.models import AuditEntry
from app.db import utcnow
from app.seals.models import IssuedDocument, Seal, SealStatus, SealUse
from app.seals.verification import verify_upload
from tests.applications.conftest import (
    HANDWRITING,
    advert_form,
    sign,
    upload_materials,
    weather_form,
)
from tests.factories.seals import pdfsig, stored_pdf


def _draft(client, headers, matter, form, enterprise_id=None):  # type: ignore[no-untyped-def]
    body = {"matter_code": matter, "form": form, "submit": False}
    if enterprise_id is not None:
        body["enterprise_id"] = enterprise_id
    answer = client.post("/api/v1/applications", json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    upload_materials(client, headers, answer.json["number"], matter, answer.json["matter_version"])
    return answer.json["number"]


def _submit(client, headers, number):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/applications/{number}/submit", headers=headers)


def test_the_form_and_the_commitment_letter_carry_the_applicant_and_the_seal(
    client, session, district, citizen_headers, seal_context, nss_db, tmp_path
):
    headers = citizen_headers(district.legal_rep)
    number = _draft(client, headers, "PY-CGJ-LSGG", advert_form(), district.enterprise.id)
    unsigned = _submit(client, headers, number)
    assert unsigned.status_code == 422 and unsigned.json["code"] == "APPLICATION_NOT_SIGNED"
    assert session.scalar(select(Application.status)) == "draft"

    signed = sign(client, headers, number)
    assert signed.status_code == 200, signed.json
    signature = signed.json["signature"]
    assert signature["current"] is True
    assert signature["form_document"]["title"] == "政务服务事项申请表"
    assert signature["commitment_document"]["title"] == "告知承诺书"

    application = session.scalars(select(Application)).one()
    for document_id in (application.form_document_id, application.commitment_document_id):
        document = session.get(IssuedDocument, document_id)
        assert document.personal_signature and document.holder_user_id == district.legal_rep.id
        pdf = stored_pdf(seal_context, document)
        checked = verify_upload(session, seal_context, pdf, now=utcnow())
        assert checked["status"] == "valid" and checked["registry"]["matches"]
        applicant, department = checked["signatures"]
        assert applicant["signer_organisation"] == "个人" and applicant["trusted"]
        assert department["covers_whole_document"]
        if shutil.which("pdfsig") and shutil.which("certutil"):
            verdict = pdfsig(nss_db, pdf, tmp_path)
            assert verdict.count("Signature is Valid") == 2, verdict
    if shutil.which("pdftotext"):
        form_pdf = tmp_path / "form.pdf"
        form_pdf.write_bytes(
            stored_pdf(seal_context, session.get(IssuedDocument, application.form_document_id))
        )
        text = subprocess.run(
            ["pdftotext", str(form_pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        # The answers as the applicant gave them, under the form's own labels.
        assert number in text and "番禺区市桥街易发商业街12号" in text
        assert district.enterprise.name in text

    submitted = _submit(client, headers, number)
    assert submitted.status_code == 200 and submitted.json["status"] == "approved"


def test_signing_needs_a_face_verification_just_now(
    client, session, district, citizen_headers, create_verified_user
):
    verified_only = create_verified_user(name="赵六")
    session.commit()
    headers = citizen_headers(verified_only)
    number = _draft(client, headers, "PY-QXJ-QXZM", weather_form())

    refused = sign(client, headers, number)
    assert refused.status_code == 403 and refused.json["code"] == "IDENTITY_LEVEL_TOO_LOW"
    assert refused.json["details"]["needed"] == "face"
    assert session.scalar(select(Application.form_document_id)) is None
    audited = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "identity.level_refused")
    ).one()
    assert audited.details["action"] == "application.sign"
    assert session.scalar(select(func.count()).select_from(IssuedDocument)) == 0


def test_a_form_changed_after_signing_is_signed_again(client, district, citizen_headers):
    headers = citizen_headers(district.citizen)
    number = _draft(client, headers, "PY-QXJ-QXZM", weather_form())
    first = sign(client, headers, number).json["signature"]
    assert first["commitment_document"] is None  # 气象证明 is no 告知承诺 matter

    changed = client.put(
        f"/api/v1/applications/{number}/form",
        json={"form": weather_form(purpose="工程延期")},
        headers=headers,
    ).json
    assert changed["signature"]["current"] is False
    stale = _submit(client, headers, number)
    assert stale.status_code == 422 and stale.json["code"] == "APPLICATION_NOT_SIGNED"
    assert stale.json["details"]["fields"]["signature"] == ["申请表签名后已修改，请重新签名"]

    again = sign(client, headers, number).json["signature"]
    assert again["current"] is True
    assert again["form_document"]["document_code"] != first["form_document"]["document_code"]
    assert _submit(client, headers, number).json["status"] == "approved"
    late = sign(client, headers, number)
    assert late.status_code == 409 and late.json["code"] == "ILLEGAL_TRANSITION"


def test_a_direct_filing_without_handwriting_writes_nothing(
    client, session, district, citizen_headers
):
    headers = citizen_headers(district.citizen)
    body = {"matter_code": "PY-QXJ-QXZM", "form": weather_form()}
    refused = client.post("/api/v1/applications", json=body, headers=headers)
    assert refused.status_code == 422 and refused.json["code"] == "APPLICATION_NOT_SIGNED"
    assert session.scalar(select(func.count()).select_from(Application)) == 0

    signed = client.post(
        "/api/v1/applications", json={**body, "handwriting_png": HANDWRITING}, headers=headers
    )
    assert signed.status_code == 201 and signed.json["status"] == "approved"
    assert signed.json["signature"]["current"] is True


def test_a_direct_filing_refused_for_a_worn_off_face_check_is_filed_on_the_retry(
    client, session, district, citizen_headers
):
    # The draft was written before the signature was refused, and the refusal committed it
    # under the Idempotency-Key: the retry after a new face check answered with that draft.
    headers = {**citizen_headers(district.citizen), "Idempotency-Key": "phone-retry-face"}
    district.citizen.face_verified_at = utcnow() - dt.timedelta(days=2)
    session.commit()
    body = {"matter_code": "PY-QXJ-QXZM", "form": weather_form(), "handwriting_png": HANDWRITING}

    refused = client.post("/api/v1/applications", json=body, headers=headers)

    assert refused.status_code == 403 and refused.json["code"] == "IDENTITY_LEVEL_TOO_LOW"
    assert refused.json["details"]["needed"] == "face"
    assert session.scalar(select(func.count()).select_from(Application)) == 0
    assert session.scalar(select(func.count()).select_from(IssuedDocument)) == 0
    audited = session.execute(
        select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.action.in_(["identity.level_refused", "application.filed"])
        )
    ).all()
    assert [(action, details.get("action")) for action, details in audited] == [
        ("identity.level_refused", "application.sign")
    ]

    district.citizen.face_verified_at = utcnow()  # a new face check
    session.commit()
    retried = client.post("/api/v1/applications", json=body, headers=headers)
    assert retried.status_code == 201, retried.json
    assert retried.json["status"] == "approved" and retried.json["licence"]["number"]
    assert retried.json["signature"]["current"] is True


def test_a_direct_filing_refused_by_the_seal_is_filed_on_the_retry(
    client, session, district, citizen_headers
):
    # The draft was written before the department's seal refused to sign its form, and the
    # refusal (kept, as every seal refusal is) committed it under the Idempotency-Key: the
    # retry once the seal was usable again answered with that draft, unsubmitted.
    headers = {**citizen_headers(district.citizen), "Idempotency-Key": "phone-retry-seal"}
    seal = session.scalars(
        select(Seal).where(Seal.department_id == district.departments["PY-QXJ"].id)
    ).one()
    seal.status = SealStatus.SUSPENDED
    session.commit()
    body = {"matter_code": "PY-QXJ-QXZM", "form": weather_form(), "handwriting_png": HANDWRITING}

    refused = client.post("/api/v1/applications", json=body, headers=headers)

    assert refused.status_code == 409 and refused.json["code"] == "SEAL_NOT_USABLE"
    assert session.scalar(select(func.count()).select_from(Application)) == 0
    assert (
        session.scalar(
            select(func.count()).select_from(SealUse).where(SealUse.outcome == "refused")
        )
        == 1
    )

    seal.status = SealStatus.ACTIVE
    session.commit()
    retried = client.post("/api/v1/applications", json=body, headers=headers)
    assert retried.status_code == 201, retried.json
    assert retried.json["status"] == "approved" and retried.json["signature"]["current"] is True


def test_bad_handwriting_is_refused_with_a_field_message(client, district, citizen_headers):
    headers = citizen_headers(district.citizen)
    number = _draft(client, headers, "PY-QXJ-QXZM", weather_form())
    url = f"/api/v1/applications/{number}/signature"

    not_base64 = client.post(url, json={"handwriting_png": "不是base64!!"}, headers=headers)
    assert not_base64.status_code == 422
    assert "handwriting_png" in not_base64.json["details"]["fields"]["json"]
    not_png = client.post(
        url, json={"handwriting_png": base64.b64encode(b"GIF89a" * 10).decode()}, headers=headers
    )
    assert not_png.status_code == 422 and not_png.json["code"] == "HANDWRITING_INVALID"


def test_another_applicant_cannot_sign_my_draft(client, district, citizen_headers):
    number = _draft(client, citizen_headers(district.citizen), "PY-QXJ-QXZM", weather_form())
    stranger = sign(client, citizen_headers(district.legal_rep), number)
    assert stranger.status_code == 404 and stranger.json["code"] == "APPLICATION_NOT_FOUND"

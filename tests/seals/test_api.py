"""The seals API: staff management, issuing, public verification and uploads."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity.models import StaffRole
from tests.factories.seals import stored_pdf

ISSUE = {
    "template": "meteorological_certificate",
    "matter": "meteorological_certificate",
    "holder": {"name": "广州市番禺区某某建筑有限公司", "id_number": "91440113MA5XXXXX0G"},
    "data": {"purpose": "保险理赔", "place": "市桥街道", "period": "2026年2月14日"},
}


def test_staff_list_seals_and_preview_the_image(
    client, create_seal_for, create_staff, staff_headers
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    listed = client.get("/api/v1/seals", headers=staff_headers(reviewer))
    assert listed.status_code == 200
    (shown,) = listed.get_json()["items"]
    assert shown["code"] == seal.code
    assert "wrapped" not in shown and "private" not in str(listed.get_json()).lower()
    image = client.get(f"/api/v1/seals/{seal.id}/image", headers=staff_headers(reviewer))
    assert (
        image.status_code == 200
        and image.mimetype == "image/png"
        and image.data.startswith(b"\x89PNG")
    )


def test_only_admins_suspend_and_revoke(
    client, create_seal_for, create_staff, staff_headers
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    admin = create_staff()
    refused = client.post(
        f"/api/v1/seals/{seal.id}/suspend", json={}, headers=staff_headers(reviewer)
    )
    assert refused.status_code == 403
    suspended = client.post(
        f"/api/v1/seals/{seal.id}/suspend", json={"reason": "检修"}, headers=staff_headers(admin)
    )
    assert suspended.status_code == 200 and suspended.get_json()["status"] == "suspended"
    again = client.post(f"/api/v1/seals/{seal.id}/suspend", json={}, headers=staff_headers(admin))
    assert again.status_code == 409 and again.get_json()["code"] == "SEAL_STATUS_CONFLICT"
    revoked = client.post(f"/api/v1/seals/{seal.id}/revoke", json={}, headers=staff_headers(admin))
    assert revoked.get_json()["status"] == "revoked"
    crl = client.get("/seals/crl/issuing.crl")
    assert crl.status_code == 200 and crl.mimetype == "application/pkix-crl"


def test_an_authorised_reviewer_issues_and_anyone_verifies(
    client, create_seal_for, create_staff, staff_headers, seal_context
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    issued = client.post(
        f"/api/v1/seals/{seal.id}/documents", json=ISSUE, headers=staff_headers(reviewer)
    )
    assert issued.status_code == 201, issued.get_json()
    body = issued.get_json()
    code = body["verify_url"].rsplit("/", 1)[1]
    shown = client.get(f"/api/v1/seals/verify/{code}").get_json()
    assert shown["status"] == "valid" and shown["holder"] == ISSUE["holder"]["name"]
    pdf = client.get(f"/api/v1/seals/verify/{code}/pdf").data
    uploaded = client.post("/api/v1/seals/verify", data=pdf, content_type="application/pdf")
    assert uploaded.status_code == 200 and uploaded.get_json()["status"] == "valid"
    forged = code[:-1] + ("B" if code.endswith("A") else "A")
    assert client.get(f"/api/v1/seals/verify/{forged}").status_code == 404


def test_an_unauthorised_reviewer_gets_403_and_an_audit_entry(
    client, session, create_seal_for, create_department, create_staff, staff_headers
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    outsider = create_staff(grants=[(StaffRole.REVIEWER, None, create_department().id)])
    refused = client.post(
        f"/api/v1/seals/{seal.id}/documents", json=ISSUE, headers=staff_headers(outsider)
    )
    assert refused.status_code == 403 and refused.get_json()["code"] == "SEAL_USE_FORBIDDEN"
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "seal.use_refused")
    ).all()
    assert any(e.actor_id == outsider.id for e in entries)


def test_uploads_that_cannot_be_verified_get_clear_errors(
    client, create_seal_for, issue_certificate, seal_context
) -> None:  # type: ignore[no-untyped-def]
    not_pdf = client.post("/api/v1/seals/verify", data=b"hello", content_type="application/pdf")
    assert not_pdf.status_code == 200 and not_pdf.get_json()["status"] == "not_pdf"
    assert not_pdf.get_json()["signatures"] == [] and not not_pdf.get_json()["registry"]["found"]
    import datetime as dt

    from seals.documents import DocumentSpec, render_document

    plain = render_document(
        DocumentSpec("无签名", "1", "某局", dt.date(2026, 1, 1), []), seal_context.fonts
    ).pdf
    unsigned = client.post("/api/v1/seals/verify", data=plain, content_type="application/pdf")
    assert unsigned.status_code == 200 and unsigned.get_json()["status"] == "unsigned"
    big = client.post(
        "/api/v1/seals/verify",
        data=b"%PDF-" + b"0" * (seal_context.max_upload_bytes + 10),
        content_type="application/pdf",
    )
    assert big.status_code == 413
    document = issue_certificate(create_seal_for())
    pdf = bytearray(stored_pdf(seal_context, document))
    pdf[pdf.index(b"/Title") + 8] ^= 1
    from io import BytesIO

    tampered = client.post(
        "/api/v1/seals/verify",
        data={"file": (BytesIO(bytes(pdf)), "x.pdf")},
        content_type="multipart/form-data",
    )
    assert tampered.status_code == 200 and tampered.get_json()["status"] == "tampered"
    missing = client.post(
        "/api/v1/seals/verify", data={"other": "x"}, content_type="multipart/form-data"
    )
    assert missing.status_code == 422

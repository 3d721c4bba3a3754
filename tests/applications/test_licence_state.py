"""A licence reads as its sealed document does: revoked in the seal registry (the document, or
the department's seal after a key leak) means revoked in the wallet, at the counter and as a
material; a department that replaced a revoked seal signs with the new one.

Before, the wallet kept saying valid and kept issuing QR codes for a licence whose document
the registry had revoked, and the counter's verify said valid for one whose seal was revoked;
a department whose seal was revoked and replaced could sign nothing (the revoked seal was
picked first); an advert permit expired 30 days after its approval, whatever period it
permitted.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.audit.service import Actor
from app.calendar import LOCAL_TZ
from app.db import utcnow
from app.identity.models import StaffRole
from app.licences.models import Licence
from app.seals import get_seal_context
from app.seals.demo import DEMO_SEALS
from app.seals.lifecycle import change_seal_status
from app.seals.models import IssuedDocument, Seal, SealStatus
from tests.applications.conftest import advert_form, apply_body, today


def _instant_licence(client, district, citizen_headers) -> tuple[dict[str, str], int]:  # type: ignore[no-untyped-def]
    applicant = citizen_headers(district.legal_rep)
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(),
        "enterprise_id": district.enterprise.id,
    }
    answer = apply_body(client, body, headers=applicant)
    assert answer.json["status"] == "approved", answer.json
    return applicant, answer.json["licence"]["id"]


def _reads_revoked_everywhere(client, applicant, licence_id: int, token: str) -> None:  # type: ignore[no-untyped-def]
    wallet = client.get(f"/api/v1/me/licences/{licence_id}", headers=applicant)
    assert wallet.json["status"] == "revoked"
    listed = client.get("/api/v1/me/licences", headers=applicant).json["items"]
    assert {item["id"]: item["status"] for item in listed}[licence_id] == "revoked"
    assert client.get(f"/api/v1/licences/verify/{token}").json["status"] == "revoked"
    again = client.post(f"/api/v1/me/licences/{licence_id}/show-code", headers=applicant)
    assert again.status_code == 409 and again.json["code"] == "LICENCE_NOT_SHOWABLE"


@pytest.mark.parametrize(
    ("revoke_url", "reason"),
    [
        ("/api/v1/seals/documents/{document.public_id}/revoke", "错误签发，撤销文书"),
        ("/api/v1/seals/{document.seal_id}/revoke", "密钥泄露，注销印章"),
    ],
    ids=["its-document", "the-seal-that-signed-it"],
)
def test_a_licence_reads_revoked_once_the_seal_registry_revokes(
    client, session, district, citizen_headers, staff_headers, create_staff, revoke_url, reason
):
    applicant, licence_id = _instant_licence(client, district, citizen_headers)
    token = client.post(f"/api/v1/me/licences/{licence_id}/show-code", headers=applicant).json[
        "token"
    ]
    document = session.get(IssuedDocument, session.get(Licence, licence_id).document_id)
    admin = staff_headers(create_staff(grants=[(StaffRole.ADMIN, None, None)]))

    revoked = client.post(
        revoke_url.format(document=document), json={"reason": reason}, headers=admin
    )

    assert revoked.status_code == 200, revoked.json
    _reads_revoked_everywhere(client, applicant, licence_id, token)


def test_a_department_signs_with_the_seal_that_replaced_a_revoked_one(
    client, session, district, citizen_headers, create_seal_for
):
    department = district.departments["PY-CGJ"]
    old = session.scalars(select(Seal).where(Seal.department_id == department.id)).one()
    change_seal_status(
        session,
        get_seal_context(),
        old,
        SealStatus.REVOKED,
        actor=Actor.system(),
        now=utcnow(),
        reason="密钥泄露",
    )
    templates, matters = next((t, m) for code, _, t, m in DEMO_SEALS if code == "PY-CGJ")
    new = create_seal_for(
        department=department, templates=templates, matters=sorted(set(templates) | set(matters))
    )
    session.commit()

    applicant, licence_id = _instant_licence(client, district, citizen_headers)

    document = session.get(IssuedDocument, session.get(Licence, licence_id).document_id)
    assert document.seal_id == new.id
    wallet = client.get(f"/api/v1/me/licences/{licence_id}", headers=applicant)
    assert wallet.json["status"] == "valid"


def test_an_advert_permit_is_valid_through_the_last_day_it_permits(
    client, session, district, citizen_headers
):
    """Before, it was valid 30 days from the approval: an advert approved today for 25 days
    from a date 20 days away read 已过期 for the last fortnight of its licensed period."""
    start = today() + dt.timedelta(days=20)
    end = start + dt.timedelta(days=25)
    applicant = citizen_headers(district.legal_rep)
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(start_date=start.isoformat(), end_date=end.isoformat()),
        "enterprise_id": district.enterprise.id,
    }
    answer = apply_body(client, body, headers=applicant)
    assert answer.json["status"] == "approved", answer.json

    licence = session.get(Licence, answer.json["licence"]["id"])
    last_evening = dt.datetime.combine(end, dt.time(23, 59), tzinfo=LOCAL_TZ)
    assert licence.state(last_evening) == "valid"
    assert licence.state(last_evening + dt.timedelta(minutes=1)) == "expired"

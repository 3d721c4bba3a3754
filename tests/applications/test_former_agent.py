"""An agent whose binding ended can no longer change the enterprise's drafts.

The draft stays theirs to see (they filed it), but editing its form or uploading its
materials acts for the enterprise. Before, both went through: a former agent could change
what the enterprise's legal representative would later sign and submit.
"""

from __future__ import annotations

from sqlalchemy import func, select

from app.applications.models import Application
from app.audit.models import AuditEntry
from app.enterprises.models import BindingRole, BindingStatus, EnterpriseBinding, RegistryStatus
from app.materials.models import ApplicationMaterial
from tests.applications.conftest import advert_form, upload_png


def test_a_former_agent_can_neither_edit_nor_upload_to_the_enterprises_draft(
    client, session, district, citizen_headers, bind_enterprise, create_verified_user
):
    agent = create_verified_user(name="王五", level="face")
    binding = bind_enterprise(agent, district.enterprise, role=BindingRole.AGENT)
    session.commit()
    headers = citizen_headers(agent)
    filed = client.post(
        "/api/v1/applications",
        json={
            "matter_code": "PY-CGJ-LSGG",
            "form": advert_form(),
            "enterprise_id": district.enterprise.id,
            "submit": False,
        },
        headers=headers,
    )
    assert filed.status_code == 201, filed.json
    number = filed.json["number"]
    session.get(EnterpriseBinding, binding.id).status = BindingStatus.REVOKED
    session.commit()

    edited = client.put(
        f"/api/v1/applications/{number}/form",
        json={"form": advert_form(content="另一则广告")},
        headers=headers,
    )
    uploaded = upload_png(client, headers, number, "site_photo")

    for answer in (edited, uploaded):
        assert answer.status_code == 403 and answer.json["code"] == "ENTERPRISE_ACCESS_DENIED"
    application = session.scalars(select(Application).where(Application.number == number)).one()
    session.refresh(application)
    assert application.form["content"] == advert_form()["content"]
    assert session.scalar(select(func.count()).select_from(ApplicationMaterial)) == 0
    refusals = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "application.enterprise_refused")
    ).all()
    assert len(refusals) == 2 and {r.actor_id for r in refusals} == {agent.id}


def test_an_enterprise_the_registry_cancelled_cannot_apply(
    client, session, district, citizen_headers
):
    """注销 (or 吊销, 停业): the company no longer exists to hold a permit. Before, its
    representative and agents could still file, and be granted one in seconds."""
    district.enterprise.status = RegistryStatus.CANCELLED
    session.commit()

    refused = client.post(
        "/api/v1/applications",
        json={
            "matter_code": "PY-CGJ-LSGG",
            "form": advert_form(),
            "enterprise_id": district.enterprise.id,
            "submit": False,
        },
        headers=citizen_headers(district.legal_rep),
    )

    assert refused.status_code == 409 and refused.json["code"] == "ENTERPRISE_NOT_ACTIVE"
    assert session.scalar(select(func.count()).select_from(Application)) == 0

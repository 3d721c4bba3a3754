"""The instant-approval benchmark's own app: the product, plus a route that calls
`issue_document` alone, to compare with.

`bench/instant_approval.py` runs gunicorn on `bench.instant_baseline:app`. The product never
mounts `/_bench/issue`: it seals the caller's bound enterprise a permit of the same template,
through the same seal and HTTP stack (a citizen token, one transaction), without the form, the
rules, the shared-data lookups, the application and its transitions. What is left is the
floor an instant approval cannot go below.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from sqlalchemy import select

from app import create_app
from app.db import get_session, utcnow
from app.enterprises.models import BindingStatus, EnterpriseBinding, RegistryEnterprise
from app.licences.service import seal_for
from app.organisation.models import Department
from app.runtime import freeze_startup_heap
from app.seals import get_seal_context
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor
from blueprints.authz import citizen_required, current_principal

MATTER, TEMPLATE = "PY-CGJ-LSGG", "outdoor_advertising_permit"

baseline = Blueprint("bench_instant_baseline", __name__, url_prefix="/api/v1")


@baseline.route("/_bench/issue", methods=["POST"])
@citizen_required
def issue_only() -> dict[str, Any]:
    """Bench only: seal a permit for the caller's enterprise, nothing else."""
    body = request.get_json(force=True)
    session = get_session()
    enterprise = session.scalars(
        select(RegistryEnterprise)
        .join(EnterpriseBinding, EnterpriseBinding.enterprise_id == RegistryEnterprise.id)
        .where(
            EnterpriseBinding.user_id == current_principal().id,
            EnterpriseBinding.status == BindingStatus.ACTIVE,
        )
    ).first()
    assert enterprise is not None
    department_id = session.scalar(select(Department.id).where(Department.code == "PY-CGJ"))
    assert department_id is not None
    now = utcnow()
    seal = seal_for(session, department_id, MATTER, TEMPLATE, now=now)
    assert seal is not None
    document = issue_document(
        session,
        get_seal_context(),
        seal=seal,
        template=TEMPLATE,
        holder=Holder(enterprise.name, enterprise.uscc, "enterprise", current_principal().id),
        data={"location": body["address"], "size": "4米×3米", "period": body["period"]},
        actor=SealActor(kind="system"),
        now=now,
        matter=MATTER,
    )
    session.commit()
    return {"number": document.number}


app = create_app()
app.register_blueprint(baseline)
freeze_startup_heap()  # as wsgi.py does for the product

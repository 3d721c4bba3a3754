"""A small district for applications: the seed matters, their departments' seals, the
embedded shared data, an enterprise with its legal representative, a citizen (both with a
face verification just now, as signing asks)."""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from app.calendar import local_day
from app.db import utcnow
from app.enterprises.models import RegistryEnterprise
from app.identity.models import StaffAccount, StaffRole, User
from app.matters import catalogue
from app.matters.cli import CATALOGUE_DIR
from app.organisation.catalogue import DEPARTMENTS
from app.organisation.models import Department
from app.seals.demo import DEMO_SEALS
from app.seals.models import SealKind
from app.shared_data.demo import seed_shared_data
from tests.factories.seals import handwriting_png


@dataclass
class District:
    departments: dict[str, Department]
    enterprise: RegistryEnterprise
    legal_rep: User
    citizen: User
    reviewers: dict[str, StaffAccount]


@pytest.fixture
def district(
    session,
    create_department,
    create_seal_for,
    create_registry_enterprise,
    create_verified_user,
    bind_enterprise,
    create_staff,
) -> District:
    departments = {code: create_department(code=code, name=name) for code, name in DEPARTMENTS}
    catalogue.load_directory(session, CATALOGUE_DIR, now=utcnow())
    for code, kind, templates, matters in DEMO_SEALS:
        if kind == SealKind.APPROVAL:
            create_seal_for(
                department=departments[code],
                templates=templates,
                matters=sorted(set(templates) | set(matters)),
            )
    seed_shared_data(session, today=local_day(utcnow()), days=60)
    enterprise = create_registry_enterprise(name="广州市番禺区示例商贸有限公司")
    legal_rep = create_verified_user(name="张三", level="face")
    bind_enterprise(legal_rep, enterprise)
    citizen = create_verified_user(name="李四", level="face")
    reviewers = {
        code: create_staff(grants=[(StaffRole.REVIEWER, None, departments[code].id)])
        for code in ("PY-CGJ", "PY-SWJ", "PY-QXJ")
    }
    session.commit()
    return District(departments, enterprise, legal_rep, citizen, reviewers)


def today() -> dt.date:
    return local_day(utcnow())


def advert_form(**changes: Any) -> dict[str, Any]:
    start = today() + dt.timedelta(days=2)
    form = {
        "address": "番禺区市桥街易发商业街12号",
        "longitude": 113.372,
        "latitude": 22.951,
        "width_m": 4,
        "height_m": 3,
        "start_date": start.isoformat(),
        "end_date": (start + dt.timedelta(days=14)).isoformat(),
        "content": "开业促销",
        "safety_commitment": True,
    }
    form.update(changes)
    return form


def drainage_form(**changes: Any) -> dict[str, Any]:
    form = {
        "outlet_address": "番禺区石碁镇工业路8号",
        "longitude": 113.44,
        "latitude": 22.98,
        "daily_volume_m3": 120,
        "cod_mg_l": 300,
        "nh3n_mg_l": 25,
        "ss_mg_l": 200,
        "commitment": True,
    }
    form.update(changes)
    return form


def weather_form(**changes: Any) -> dict[str, Any]:
    form = {
        "date": (today() - dt.timedelta(days=3)).isoformat(),
        "address": "番禺区南村镇兴业路",
        "longitude": 113.39,
        "latitude": 23.0,
        "purpose": "保险理赔",
    }
    form.update(changes)
    return form


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


PNG = _tiny_png()


def upload_png(client, headers, number: str, material: str):  # type: ignore[no-untyped-def]
    """Upload a small PNG as the application's `material`; the answer."""
    return client.post(
        f"/api/v1/applications/{number}/materials/{material}",
        data=PNG,
        headers={**headers, "Content-Type": "image/png"},
    )


def upload_materials(client, headers, number: str, matter: str, version: int) -> None:  # type: ignore[no-untyped-def]
    """Upload a small PNG for every required material the applicant must upload."""
    content = client.get(f"/api/v1/matters/{matter}/versions/{version}").json["content"]
    for material in content["guide"]["materials"]:
        if material["required"] and material.get("provided_by", "upload") == "upload":
            answer = upload_png(client, headers, number, material["id"])
            assert answer.status_code == 200, answer.json


def accepted_without_the_report(client, headers, district) -> str:  # type: ignore[no-untyped-def]
    """A 排水许可 accepted under 容缺 (the water-quality report still to come): its number."""
    body = {
        "matter_code": "PY-SWJ-PSXK",
        "form": drainage_form(),
        "enterprise_id": district.enterprise.id,
        "submit": False,
    }
    number: str = client.post("/api/v1/applications", json=body, headers=headers).json["number"]
    assert upload_png(client, headers, number, "drainage_plan").status_code == 200
    sign(client, headers, number)
    accepted = client.post(f"/api/v1/applications/{number}/submit", headers=headers).json
    assert accepted["status"] == "accepted" and accepted["supply_due"], accepted
    return number


HANDWRITING = base64.b64encode(handwriting_png()).decode()


def sign(client, headers, number: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/applications/{number}/signature",
        json={"handwriting_png": HANDWRITING},
        headers=headers,
    )


def apply(client, headers, matter, form, enterprise_id=None, **extra):  # type: ignore[no-untyped-def]
    """As a phone does it: a draft, its materials uploaded, signed, then submitted. The answer
    of the submission (or of the draft, when that was refused)."""
    body = {"matter_code": matter, "form": form, "submit": False, **extra}
    if enterprise_id is not None:
        body["enterprise_id"] = enterprise_id
    draft = client.post("/api/v1/applications", json=body, headers=headers)
    if draft.status_code != 201:
        return draft
    number = draft.json["number"]
    upload_materials(client, headers, number, matter, draft.json["matter_version"])
    signed = sign(client, headers, number)
    assert signed.status_code == 200, signed.json
    return client.post(f"/api/v1/applications/{number}/submit", headers=headers)


def apply_body(client, body, *, headers):  # type: ignore[no-untyped-def]
    """`apply` with a filing body ({matter_code, form, enterprise_id})."""
    return apply(client, headers, body["matter_code"], body["form"], body.get("enterprise_id"))

"""What a seal may sign: its authorised templates and matters, for every actor; what a
document must carry: the fields its template declares and a holder ID with a valid check digit.

Reproduces the review's finding: a weather reviewer issued a drainage permit and an advertising
permit under the weather seal, for `matter: "anything_goes"`, to a holder with a bad check digit
and no data.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity.models import StaffRole
from app.seals import errors
from app.seals.issuing import Holder
from app.seals.lifecycle import SealActor
from app.seals.models import SealUse
from tests.factories.seals import WEATHER_DATA

ENTERPRISE = {"name": "广州市番禺区某某建筑有限公司", "id_number": "91440113MA5XXXXX0G"}
DRAINAGE = {
    "template": "drainage_permit",
    "matter": "drainage_permit",
    "holder": ENTERPRISE,
    "data": {"address": "番禺区市桥街道东环路1号", "volume": 120, "period": "2026年至2031年"},
}
WEATHER = {
    "template": "meteorological_certificate",
    "matter": "meteorological_certificate",
    "holder": ENTERPRISE,
    "data": {"purpose": "保险理赔", "place": "市桥街道", "period": "2026年2月14日"},
}


@pytest.fixture
def weather_reviewer(create_seal_for, create_department, create_staff):  # type: ignore[no-untyped-def]
    department = create_department(name="番禺区气象局")
    seal = create_seal_for(
        department=department,
        templates=["meteorological_certificate"],
        matters=["meteorological_certificate"],
    )
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, department.id)])
    return seal, reviewer


def _refusals(session, seal_id: int) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "seal.use_refused", AuditEntry.subject_id == str(seal_id)
            )
        )
    )


@pytest.mark.parametrize(
    "request_body",
    [
        DRAINAGE,
        {
            "template": "outdoor_advertising_permit",
            "matter": "outdoor_advertising_permit",
            "holder": ENTERPRISE,
            "data": {"location": "市桥街道", "size": "3米×6米", "period": "30日"},
        },
        {**WEATHER, "matter": "anything_goes"},
        {**WEATHER, "matter": "drainage_permit"},
    ],
    ids=["other-department-permit", "advertising-permit", "unknown-matter", "other-matter"],
)
def test_a_reviewer_cannot_sign_another_template_or_matter_with_their_seal(
    client, session, weather_reviewer, staff_headers, request_body: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    seal, reviewer = weather_reviewer
    refused = client.post(
        f"/api/v1/seals/{seal.id}/documents", json=request_body, headers=staff_headers(reviewer)
    )
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["code"] == "SEAL_USE_FORBIDDEN"
    [entry] = _refusals(session, seal.id)
    assert entry.actor_id == reviewer.id
    assert entry.details["template"] == request_body["template"]
    assert entry.details["matter"] == request_body["matter"]
    uses = session.scalars(select(SealUse).where(SealUse.seal_id == seal.id)).all()
    assert [u.outcome for u in uses] == ["refused"]


def test_a_matter_must_be_named(client, weather_reviewer, staff_headers) -> None:  # type: ignore[no-untyped-def]
    seal, reviewer = weather_reviewer
    body = {k: v for k, v in WEATHER.items() if k != "matter"}
    refused = client.post(
        f"/api/v1/seals/{seal.id}/documents", json=body, headers=staff_headers(reviewer)
    )
    assert refused.status_code == 422
    assert "matter" in refused.get_json()["details"]["fields"]["json"]


def test_the_rightful_reviewer_still_issues(client, weather_reviewer, staff_headers) -> None:  # type: ignore[no-untyped-def]
    seal, reviewer = weather_reviewer
    issued = client.post(
        f"/api/v1/seals/{seal.id}/documents", json=WEATHER, headers=staff_headers(reviewer)
    )
    assert issued.status_code == 201, issued.get_json()
    assert issued.get_json()["template"] == "meteorological_certificate"


def test_the_system_actor_is_held_to_the_templates_too(
    session, create_seal_for, issue_certificate
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for(templates=["drainage_permit"], matters=["meteorological_certificate"])
    with pytest.raises(errors.SealUseForbidden):
        issue_certificate(seal)
    assert _refusals(session, seal.id)[0].details["reason"] == "template_not_authorised"


@pytest.mark.parametrize(
    ("holder", "data", "expected"),
    [
        (
            {"name": "某公司", "id_number": "91440113MA5XXXXX0X"},
            WEATHER["data"],
            {"holder": {"id_number": ["统一社会信用代码有误，请核对"]}},
        ),
        (
            {"name": "张三", "id_number": "440113199001011234", "kind": "person"},
            WEATHER["data"],
            {"holder": {"id_number": ["居民身份证号码有误，请核对"]}},
        ),
        (
            {"name": "某公司", "id_number": ""},
            WEATHER["data"],
            {"holder": {"id_number": ["请填写统一社会信用代码"]}},
        ),
        (
            ENTERPRISE,
            {},
            {
                "data": {
                    "purpose": ["请填写证明用途"],
                    "place": ["请填写地点"],
                    "period": ["请填写时段"],
                }
            },
        ),
        (
            ENTERPRISE,
            {**WEATHER["data"], "observations": "晴"},
            {"data": {"observations": ["观测数据应为表格（每行若干单元格）"]}},
        ),
    ],
    ids=["uscc-check-digit", "id-check-digit", "id-missing", "data-empty", "table-not-a-table"],
)
def test_fields_and_holder_are_validated_before_rendering(
    client, weather_reviewer, staff_headers, holder, data, expected
) -> None:  # type: ignore[no-untyped-def]
    seal, reviewer = weather_reviewer
    body = {**WEATHER, "holder": holder, "data": data}
    refused = client.post(
        f"/api/v1/seals/{seal.id}/documents", json=body, headers=staff_headers(reviewer)
    )
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["code"] == "DOCUMENT_DATA_INVALID"
    assert refused.get_json()["details"]["fields"] == expected


def test_a_drainage_volume_must_be_a_positive_number(
    session, create_seal_for, issue_certificate
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for(templates=["drainage_permit"], matters=["drainage_permit"])
    with pytest.raises(errors.DocumentDataInvalid) as refused:
        issue_certificate(
            seal,
            template="drainage_permit",
            matter="drainage_permit",
            holder=Holder(**ENTERPRISE),
            data={**DRAINAGE["data"], "volume": "很多"},
        )
    assert refused.value.details["fields"] == {"data": {"volume": ["排水量（立方米/日）应为正数"]}}


def test_a_person_template_refuses_an_enterprise_holder(
    session, create_seal_for, issue_certificate
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for(templates=["commitment_letter"], matters=["commitment_letter"])
    with pytest.raises(errors.DocumentDataInvalid) as refused:
        issue_certificate(
            seal,
            template="commitment_letter",
            matter="commitment_letter",
            holder=Holder(**ENTERPRISE),
            data={"matter_name": "气象证明"},
            actor=SealActor("system"),
        )
    assert refused.value.details["fields"] == {"holder": {"kind": ["该文书只能签发给个人"]}}


def test_templates_are_listed_with_their_fields(client, create_staff, staff_headers) -> None:  # type: ignore[no-untyped-def]
    listed = client.get("/api/v1/seals/templates", headers=staff_headers(create_staff()))
    assert listed.status_code == 200
    by_key = {t["key"]: t for t in listed.get_json()["items"]}
    drainage = by_key["drainage_permit"]
    assert drainage["title"] == "城镇污水排入排水管网许可证"
    assert drainage["holder_kinds"] == ["enterprise"]
    assert drainage["matters"] == ["drainage_permit", "PY-SWJ-PSXK"]
    volume = next(f for f in drainage["fields"] if f["key"] == "volume")
    assert volume == {
        "key": "volume",
        "label": "排水量（立方米/日）",
        "type": "decimal",
        "required": True,
    }
    weather_table = next(
        f for f in by_key["meteorological_certificate"]["fields"] if f["key"] == "observations"
    )
    assert weather_table["type"] == "table" and weather_table["required"] is False
    assert client.get("/api/v1/seals/templates").status_code == 401


def test_weather_data_of_the_factory_is_valid() -> None:
    from app.seals.templates import get_template, validate_request

    validate_request(get_template("meteorological_certificate"), Holder(**ENTERPRISE), WEATHER_DATA)

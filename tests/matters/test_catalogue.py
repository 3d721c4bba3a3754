"""The matter catalogue: the repository's matter files load as versions, published versions
never change, the public API browses and searches, admins publish new versions."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.db import utcnow
from app.identity.models import StaffRole
from app.matters import catalogue, forms
from app.matters.cli import CATALOGUE_DIR
from app.matters.errors import MatterInvalid, MatterVersionConflict
from app.matters.models import MatterVersion
from app.organisation.catalogue import DEPARTMENTS

SEED_CODES = ["PY-CGJ-JZLJ", "PY-CGJ-LSGG", "PY-QXJ-QXZM", "PY-SWJ-PSXK"]


@pytest.fixture
def departments(create_department):
    return {code: create_department(code=code, name=name) for code, name in DEPARTMENTS}


@pytest.fixture
def loaded(session, departments):
    results = catalogue.load_directory(session, CATALOGUE_DIR, now=utcnow())
    session.flush()
    return results


def _content(code: str) -> dict:
    return json.loads((CATALOGUE_DIR / code / "v1.json").read_text(encoding="utf-8"))


def test_the_repositorys_matters_load_once_each(session, loaded):
    assert sorted({r.version.content["code"] for r in loaded}) == SEED_CODES
    assert all(r.created for r in loaded)
    # Version 3 of the advert permit: valid through the period it permits (`valid_through`).
    assert sorted((r.version.content["code"], r.version.version) for r in loaded) == sorted(
        [(code, version) for code in SEED_CODES for version in (1, 2)] + [("PY-CGJ-LSGG", 3)]
    )
    again = catalogue.load_directory(session, CATALOGUE_DIR, now=utcnow())
    assert not any(r.created for r in again)  # idempotent
    for result in loaded:  # every form is a JSON Schema the validator accepts
        assert forms.check_schema(result.version.content["form"]) is None
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "matter.published"))
    assert len(audited.all()) == 9


def test_a_published_version_never_changes(session, loaded, tmp_path: Path):
    folder = tmp_path / "matters"
    shutil.copytree(CATALOGUE_DIR, folder)
    edited = folder / "PY-QXJ-QXZM" / "v1.json"
    content = json.loads(edited.read_text(encoding="utf-8"))
    content["limits"]["statutory_days"] = 3
    edited.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")

    with pytest.raises(MatterVersionConflict):
        catalogue.load_directory(session, folder, now=utcnow())

    content["version"] = 3  # v2 is in the repository already
    edited.rename(folder / "PY-QXJ-QXZM" / "v1.json.bak")
    original = _content("PY-QXJ-QXZM")
    (folder / "PY-QXJ-QXZM" / "v1.json").write_text(
        json.dumps(original, ensure_ascii=False), encoding="utf-8"
    )
    (folder / "PY-QXJ-QXZM" / "v3.json").write_text(
        json.dumps(content, ensure_ascii=False), encoding="utf-8"
    )
    catalogue.load_directory(session, folder, now=utcnow())
    assert catalogue.get_version(session, "PY-QXJ-QXZM").version == 3
    first = catalogue.get_version(session, "PY-QXJ-QXZM", 1)
    assert first.content["limits"]["statutory_days"] == 5  # as applications under v1 saw it


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c.update(kind="行政审批"), "kind"),
        (lambda c: c["limits"].update(statutory_days=0), "limits.statutory_days"),
        (lambda c: c.update(flags=["秒批", "秒批"]), "flags"),
        (lambda c: c["form"].update(type="nonsense"), "form"),
        (lambda c: c.pop("guide"), "matter"),
        (lambda c: c.update(department="PY-NONE"), "department"),
    ],
)
def test_a_malformed_definition_is_refused_naming_the_field(session, departments, change, field):
    content = _content("PY-CGJ-LSGG")
    change(content)
    with pytest.raises(MatterInvalid) as refused:
        catalogue.publish(session, content, staff_id=None, now=utcnow())
    assert field in refused.value.details["fields"]
    assert session.scalars(select(MatterVersion)).first() is None  # nothing half-written


def test_the_catalogue_is_searched_by_department_flag_applicant_and_keyword(client, loaded):
    def codes(**query):
        response = client.get("/api/v1/matters", query_string=query)
        assert response.status_code == 200, response.json
        return [item["code"] for item in response.json["items"]]

    assert codes() == SEED_CODES
    assert codes(flag="秒批") == ["PY-CGJ-LSGG", "PY-QXJ-QXZM", "PY-SWJ-PSXK"]
    assert codes(department="PY-CGJ") == ["PY-CGJ-JZLJ", "PY-CGJ-LSGG"]
    assert codes(applicant="citizen") == ["PY-QXJ-QXZM"]
    assert codes(q="气象") == ["PY-QXJ-QXZM"]
    assert codes(q="lsgg") == ["PY-CGJ-LSGG"]
    assert codes(q="100%") == []
    page = client.get("/api/v1/matters", query_string={"page_size": 2, "page": 2}).json
    assert page["total"] == 4 and [i["code"] for i in page["items"]] == SEED_CODES[2:]
    one = client.get("/api/v1/matters", query_string={"flag": "告知承诺"}).json["items"][0]
    assert one["department_name"] == "番禺区城市管理和综合执法局"
    assert client.get("/api/v1/matters", query_string={"flag": "快"}).status_code == 422


def test_a_matter_shows_its_guide_form_and_versions(client, loaded):
    current = client.get("/api/v1/matters/PY-SWJ-PSXK")
    assert current.status_code == 200
    assert current.json["version"] == 2 and current.json["current"] is True
    content = current.json["content"]
    assert content["form"]["properties"]["cod_mg_l"]["title"] == "化学需氧量（mg/L）"
    assert [m["id"] for m in content["guide"]["materials"] if m["key"]] == [
        "drainage_plan",
        "commitment_letter",
    ]
    assert current.json["published_at"].endswith("+08:00")
    assert client.get("/api/v1/matters/PY-NONE").json["code"] == "MATTER_NOT_FOUND"
    missing = client.get("/api/v1/matters/PY-SWJ-PSXK/versions/9")
    assert missing.status_code == 404 and missing.json["code"] == "MATTER_VERSION_NOT_FOUND"


def test_an_admin_publishes_a_new_version_and_only_an_admin(
    client, session, loaded, create_staff, staff_headers, departments
):
    admin = staff_headers(create_staff(grants=[(StaffRole.ADMIN, None, None)]))
    officer = staff_headers(
        create_staff(grants=[(StaffRole.REVIEWER, None, departments["PY-CGJ"].id)])
    )
    content = _content("PY-CGJ-LSGG")
    content.pop("version")
    content["limits"]["promised_days"] = 2

    assert client.post("/api/v1/matters", json=content, headers=officer).status_code == 403
    assert client.post("/api/v1/matters", json=content).status_code == 401
    published = client.post("/api/v1/matters", json=content, headers=admin)
    same = client.post("/api/v1/matters", json=content, headers=admin)
    bad = copy.deepcopy(content)
    bad["limits"]["promised_days"] = -1
    refused = client.post("/api/v1/matters", json=bad, headers=admin)

    assert published.status_code == 201 and published.json["version"] == 4
    assert same.status_code == 200 and same.json["version"] == 4  # nothing new to publish
    assert refused.status_code == 422 and refused.json["code"] == "MATTER_INVALID"
    assert "limits.promised_days" in refused.json["details"]["fields"]
    assert (
        client.get("/api/v1/matters/PY-CGJ-LSGG/versions/1").json["content"]["limits"][
            "promised_days"
        ]
        == 3
    )


def test_a_version_whose_rule_tests_fail_is_not_published(
    client, session, loaded, create_staff, staff_headers
):
    admin = staff_headers(create_staff(grants=[(StaffRole.ADMIN, None, None)]))
    content = json.loads((CATALOGUE_DIR / "PY-CGJ-LSGG" / "v3.json").read_text(encoding="utf-8"))
    content.pop("version")
    # Staff loosen the area rule without updating the case that says 30㎡ goes to review.
    content["rules"]["parameters"]["max_area_m2"]["value"] = 40
    refused = client.post("/api/v1/matters", json=content, headers=admin)
    assert refused.status_code == 422 and refused.json["code"] == "MATTER_INVALID"
    assert "rules.tests.面积超限转人工" in refused.json["details"]["fields"]

    content["rules"]["rules"][0]["when"] = {"==": [{"var": "enterprise.capital"}, 1]}
    unknown_fact = client.post("/api/v1/matters", json=content, headers=admin)
    assert unknown_fact.status_code == 422
    assert "rules.rules[0].when.==[0]" in unknown_fact.json["details"]["fields"]
    content["rules"]["rules"][0]["when"] = {"__import__": "os"}
    assert client.post("/api/v1/matters", json=content, headers=admin).status_code == 422
    assert catalogue.get_matter(session, "PY-CGJ-LSGG").current_version == 3


def test_forms_refuse_with_a_chinese_message_per_field(loaded):
    form = _content("PY-CGJ-LSGG")["form"]
    errors = forms.form_errors(
        form,
        {
            "address": "市桥街",
            "longitude": 120.0,
            "latitude": 22.94,
            "width_m": 0,
            "height_m": 3,
            "start_date": "2026-02-30",
            "end_date": "2026-03-10",
            "content": "开业促销",
            "safety_commitment": False,
        },
    )
    assert errors == {
        "address": "设置地点过短",
        "longitude": "经度不能大于113.7",
        "width_m": "宽度（米）须大于0",
        "start_date": "设置开始日期格式不正确",
        "safety_commitment": "安全责任承诺须确认",
    }
    assert forms.form_errors(form, {})["content"] == "广告内容为必填项"


def test_a_licence_valid_through_a_form_field_needs_a_required_date_field(
    client, session, loaded, create_staff, staff_headers
):
    admin = staff_headers(create_staff(grants=[(StaffRole.ADMIN, None, None)]))
    content = json.loads((CATALOGUE_DIR / "PY-CGJ-LSGG" / "v3.json").read_text(encoding="utf-8"))
    content.pop("version")
    content["licence"]["valid_through"] = "form.address"

    refused = client.post("/api/v1/matters", json=content, headers=admin)

    assert refused.status_code == 422 and refused.json["code"] == "MATTER_INVALID"
    assert "licence.valid_through" in refused.json["details"]["fields"]

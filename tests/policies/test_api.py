"""The HTTP API: officers scoped to their department, enterprise feed, calculator, CSV, import."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.enterprises.models import BindingRole, RegistryEnterprise
from app.identity.models import StaffRole
from app.policies.models import EnterpriseProfile, Policy, PushOptOut, ReceivingAccount
from tests.factories.identity import id_number_for

API = "/api/v1"
BODY = {
    "title": "小微出口企业出口信用保险保费支持",
    "doc_number": "番商务〔2024〕8号",
    "summary": "对投保短期出口信用保险的小微出口企业给予保费支持",
    "benefit_kind": "insurance",
    "delivery": "automatic",
    "criteria_form": {"tags_all": ["出口企业"], "size_classes": ["small", "micro"]},
}


def officer(create_staff: Any, staff_headers: Any, department: Any) -> dict[str, str]:
    account = create_staff(grants=[(StaffRole.POLICY_OFFICER, None, department.id)])
    return staff_headers(account)


def test_officer_creates_previews_publishes_and_sees_reach(
    client: FlaskClient,
    create_staff: Any,
    staff_headers: Any,
    policy_department: Any,
    create_profile: Any,
) -> None:
    create_profile(tags=["出口企业"])
    headers = officer(create_staff, staff_headers, policy_department)
    created = client.post(
        f"{API}/staff/policies",
        json={**BODY, "department_id": policy_department.id},
        headers=headers,
    )
    assert created.status_code == 201, created.json
    policy = created.json
    assert policy["status"] == "draft" and policy["criteria_version"] == 1
    assert {c["label"] for c in policy["criteria"]} == {"具有出口企业资质", "小型或微型企业"}
    preview = client.get(f"{API}/staff/policies/{policy['id']}/preview", headers=headers)
    assert preview.status_code == 200 and preview.json["eligible"] >= 1
    published = client.post(f"{API}/staff/policies/{policy['id']}/publish", headers=headers)
    assert published.status_code == 200 and published.json["matched"] >= 1
    again = client.post(f"{API}/staff/policies/{policy['id']}/publish", headers=headers)
    assert again.status_code == 409
    stats = client.get(f"{API}/staff/policies/{policy['id']}/stats", headers=headers)
    assert stats.json["matched"] >= 1
    report = client.get(f"{API}/staff/policies/{policy['id']}/beneficiaries.csv", headers=headers)
    assert report.status_code == 200 and report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "统一社会信用代码" and len(rows) >= 2


def test_an_administrator_naming_a_department_that_does_not_exist_gets_404_not_500(
    client: FlaskClient, create_staff: Any, staff_headers: Any
) -> None:
    # Found by the contract test on PostgreSQL: admins are unscoped, so the id reached the
    # INSERT and its foreign key (SQLite, without enforced keys, stored the orphan).
    admin = staff_headers(create_staff())
    response = client.post(
        f"{API}/staff/policies", json={**BODY, "department_id": 987654}, headers=admin
    )
    assert response.status_code == 404 and response.json["code"] == "DEPARTMENT_NOT_FOUND"


def test_bad_input_is_refused(
    client: FlaskClient,
    create_staff: Any,
    staff_headers: Any,
    policy_department: Any,
    create_department: Any,
) -> None:
    headers = officer(create_staff, staff_headers, policy_department)
    bad = {**BODY, "department_id": policy_department.id, "criteria_form": None,
           "criteria": [{"label": "行业", "rule": {"industry_prefix": ["Q99X"]}}]}  # fmt: skip
    response = client.post(f"{API}/staff/policies", json=bad, headers=headers)
    assert response.status_code == 422
    assert response.json["details"]["field"] == "criteria[0].rule.industry_prefix[0]"
    contradiction = {**BODY, "department_id": policy_department.id,
                     "criteria_form": {"employees_min": 50, "employees_max": 10}}  # fmt: skip
    response = client.post(f"{API}/staff/policies", json=contradiction, headers=headers)
    assert (
        response.status_code == 422
        and response.json["details"]["field"] == "criteria_form.employees_min"
    )
    other = create_department()
    response = client.post(
        f"{API}/staff/policies", json={**BODY, "department_id": other.id}, headers=headers
    )
    assert response.status_code == 403
    expired = {**BODY, "department_id": policy_department.id, "expires_on": "2020-01-01"}
    created = client.post(f"{API}/staff/policies", json=expired, headers=headers).json
    response = client.post(f"{API}/staff/policies/{created['id']}/publish", headers=headers)
    assert response.status_code == 409 and response.json["code"] == "POLICY_EXPIRED"


def test_a_policy_whose_pushed_text_holds_a_mobile_or_id_number_is_refused(
    client: FlaskClient,
    session: Session,
    create_staff: Any,
    staff_headers: Any,
    policy_department: Any,
) -> None:
    # The push carries the first 20 characters of the title and of the summary, and notify
    # refuses a message with a mobile or ID number in it. Such a policy was accepted, and its
    # pushes then stopped every policy push of the district (tests/policies/test_push.py).
    headers = officer(create_staff, staff_headers, policy_department)
    url = f"{API}/staff/policies"
    body = {**BODY, "department_id": policy_department.id}
    hotline = "咨询热线13926012345，对投保短期出口信用保险的小微出口企业给予保费支持"

    response = client.post(url, json={**body, "summary": hotline}, headers=headers)
    assert response.status_code == 422
    assert response.json["code"] == "POLICY_TEXT_NOT_PUSHABLE"
    assert response.json["details"] == {"field": "summary"}
    assert "前20个字" in response.json["message"]
    titled = {**body, "title": f"{id_number_for(order=7)}专项补贴"}
    response = client.post(url, json=titled, headers=headers)
    assert (response.status_code, response.json["details"]) == (422, {"field": "title"})

    # After the part that is pushed, a hotline is the policy's own text.
    later = "对投保短期出口信用保险的小微出口企业给予保费支持，咨询热线13926012345"
    created = client.post(url, json={**body, "summary": later}, headers=headers)
    assert created.status_code == 201, created.json
    policy_url = f"{url}/{created.json['id']}"
    response = client.patch(policy_url, json={"summary": hotline}, headers=headers)
    assert (response.status_code, response.json["details"]) == (422, {"field": "summary"})

    # A draft stored before the check: publishing it is refused the same way.
    session.get(Policy, created.json["id"]).summary = hotline
    session.commit()
    response = client.post(f"{policy_url}/publish", headers=headers)
    assert response.status_code == 422
    assert (response.json["code"], response.json["details"]) == (
        "POLICY_TEXT_NOT_PUSHABLE",
        {"field": "summary"},
    )


def test_enterprise_feed_reasons_read_favourite_search_and_access(
    client: FlaskClient,
    session: Session,
    create_profile: Any,
    create_policy: Any,
    create_user: Any,
    bind_enterprise: Any,
    citizen_headers: Any,
) -> None:
    mine = create_profile(tags=["出口企业"])
    theirs = create_profile(tags=["出口企业"])
    agent = create_user()
    bind_enterprise(
        agent, session.get(RegistryEnterprise, mine.enterprise_id), role=BindingRole.AGENT
    )
    create_policy({"tags_all": ["出口企业"]}, title="出口信用保险保费支持", publish=True)
    create_policy(
        {"size_classes": ["small", "micro"]},
        title="小微企业稳岗补贴",
        benefit_kind="tax",
        publish=True,
    )
    headers = citizen_headers(agent)
    feed = client.get(f"{API}/enterprises/{mine.enterprise_id}/policy-feed", headers=headers)
    assert feed.status_code == 200, feed.json
    assert feed.json["total"] == 2 and feed.json["unread"] == 2
    first = feed.json["items"][0]
    assert first["reasons"][0]["result"] == "pass" and first["reasons"][0]["source"]["doc"]
    search = client.get(
        f"{API}/enterprises/{mine.enterprise_id}/policy-feed?q=信用保险", headers=headers
    )
    assert [i["policy"]["title"] for i in search.json["items"]] == ["出口信用保险保费支持"]
    kind = client.get(
        f"{API}/enterprises/{mine.enterprise_id}/policy-feed?benefit_kind=tax", headers=headers
    )
    assert [i["policy"]["title"] for i in kind.json["items"]] == ["小微企业稳岗补贴"]
    policy_id = search.json["items"][0]["policy"]["id"]
    marked = client.put(f"{API}/enterprises/{mine.enterprise_id}/policy-feed/{policy_id}",
                        json={"read": True, "favourite": True}, headers=headers)  # fmt: skip
    assert marked.status_code == 200 and marked.json["favourite"] is True
    feed = client.get(
        f"{API}/enterprises/{mine.enterprise_id}/policy-feed?favourite=true", headers=headers
    )
    assert feed.json["unread"] == 1 and feed.json["total"] == 1
    detail = client.get(
        f"{API}/enterprises/{mine.enterprise_id}/policy-feed/{policy_id}", headers=headers
    )
    assert detail.json["status"] == "eligible" and detail.json["verdict"].startswith("符合条件")
    denied = client.get(f"{API}/enterprises/{theirs.enterprise_id}/policy-feed", headers=headers)
    assert denied.status_code == 403
    # Agents may not confirm the receiving account.
    account = {
        "bank_name": "中国工商银行",
        "account_name": "测试公司",
        "account_number": "6222020200112233445",
    }
    assert (
        client.put(
            f"{API}/enterprises/{mine.enterprise_id}/policy-account", json=account, headers=headers
        ).status_code
        == 403
    )


def test_self_declared_profile_update_and_masked_account(
    client: FlaskClient,
    session: Session,
    create_profile: Any,
    create_verified_user: Any,
    bind_enterprise: Any,
    citizen_headers: Any,
) -> None:
    profile = create_profile(tags=[])
    owner = create_verified_user(level="face")
    enterprise = session.get(RegistryEnterprise, profile.enterprise_id)
    bind_enterprise(owner, enterprise)
    headers = citizen_headers(owner)
    url = f"{API}/enterprises/{profile.enterprise_id}/policy-profile"
    response = client.patch(url, json={"employees": 8, "tags": ["专精特新"]}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["tags"] == ["专精特新"] and response.json["size_class"] == "micro"
    assert client.patch(url, json={"town": "市桥街"}, headers=headers).status_code == 422
    assert client.patch(url, json={"industry_code": "Z1"}, headers=headers).status_code == 422
    history = client.get(f"{url}/history", headers=headers)
    assert history.json["items"][0]["source"] == "self"
    account = {
        "bank_name": "中国工商银行",
        "account_name": enterprise.name,
        "account_number": "6222020200112233445",
    }
    saved = client.put(
        f"{API}/enterprises/{profile.enterprise_id}/policy-account", json=account, headers=headers
    )
    assert saved.status_code == 200 and saved.json["account_number"] == "***************3445"
    stored = session.get(ReceivingAccount, profile.enterprise_id)
    assert "6222020200112233445" not in stored.account_number_sealed


def test_public_calculator(client: FlaskClient, create_policy: Any) -> None:
    create_policy({"tags_all": ["高新技术企业"]}, title="高新技术企业认定奖励", publish=True)
    create_policy({"industry_include": ["H62"]}, title="餐饮业专项资金", publish=True)
    body = {"industry_code": "H6210", "employees": 12, "revenue_yuan": 2_000_000, "tags": []}
    response = client.post(f"{API}/policy-calculator", json=body)
    assert response.status_code == 200, response.json
    assert response.json["size_class"] == "small"
    assert "餐饮业专项资金" in [e["title"] for e in response.json["eligible"]]
    assert any(m["title"] == "高新技术企业认定奖励" for m in response.json["near_misses"])
    assert client.post(f"{API}/policy-calculator", json={"surprise": 1}).status_code == 422


def test_import_cli_is_idempotent_and_reports_rejected_rows(
    runner: Any, app: Any, session: Session, create_registry_enterprise: Any, tmp_path: Any
) -> None:
    enterprise = create_registry_enterprise()
    # Any other character than the real check character makes the code invalid.
    wrong_check = "Y" if enterprise.uscc.endswith("X") else "X"
    path = tmp_path / "profiles.csv"
    path.write_text(
        "uscc,industry_code,town,established_on,employees,revenue_yuan,tags\n"
        f"{enterprise.uscc},H6210,市桥街,2019-03-01,25,4000000,出口企业|专精特新\n"
        "91440113MA59XXXXX1,H6210,市桥街,,,,\n"
        f"{enterprise.uscc[:-1]}{wrong_check},C3872,,,,,\n"
        f"{enterprise.uscc},Q9,市桥街,,,,\n",
        encoding="utf-8",
    )
    from app.policies import importer

    report = importer.import_csv(session, str(path), now=__import__("app.db").db.utcnow())
    assert (report.created, len(report.rejected)) == (1, 3)
    reasons = " ".join(r[2] for r in report.rejected)
    assert "校验位" in reasons and "industry_code" in reasons
    again = importer.import_csv(session, str(path), now=__import__("app.db").db.utcnow())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    profile = session.get(EnterpriseProfile, enterprise.id)
    assert profile.industry_code == "H6210" and profile.size_class == "small"
    assert session.scalars(
        select(EnterpriseProfile).where(EnterpriseProfile.enterprise_id == enterprise.id)
    ).one()


def test_reading_the_feed_of_an_enterprise_without_a_profile_writes_nothing(
    client: FlaskClient,
    session: Session,
    create_registry_enterprise: Any,
    create_verified_user: Any,
    bind_enterprise: Any,
    citizen_headers: Any,
) -> None:
    enterprise = create_registry_enterprise()
    owner = create_verified_user()
    bind_enterprise(owner, enterprise)
    session.commit()
    headers = citizen_headers(owner)
    base = f"{API}/enterprises/{enterprise.id}"

    for path in ("policy-profile", "policy-feed", "policy-profile/history", "policy-near-misses"):
        response = client.get(f"{base}/{path}", headers=headers)
        assert response.status_code in (200, 404), (path, response.get_json())
    session.rollback()  # what the request did not commit is gone either way; was anything?

    assert session.get(EnterpriseProfile, enterprise.id) is None


def test_opting_out_and_back_in(
    client: FlaskClient, session: Session, create_profile: Any, create_verified_user: Any,
    bind_enterprise: Any, citizen_headers: Any,
) -> None:  # fmt: skip
    profile = create_profile()
    owner = create_verified_user()
    bind_enterprise(owner, session.get(RegistryEnterprise, profile.enterprise_id))
    session.commit()
    url = f"{API}/enterprises/{profile.enterprise_id}/policy-push-optout"
    headers = citizen_headers(owner)
    assert client.put(url, headers=headers).get_json() == {"opted_out": True}
    assert client.put(url, headers=headers).get_json() == {"opted_out": True}  # idempotent
    assert session.scalars(select(PushOptOut)).all()
    assert client.delete(url, headers=headers).get_json() == {"opted_out": False}
    session.expire_all()
    assert session.scalars(select(PushOptOut)).all() == []


def test_a_headcount_beyond_any_employer_is_refused_not_a_server_error(
    client: FlaskClient,
    session: Session,
    create_profile: Any,
    create_verified_user: Any,
    bind_enterprise: Any,
    citizen_headers: Any,
    create_registry_enterprise: Any,
    tmp_path: Any,
) -> None:
    """Employees are stored in a 32-bit column: 3,000,000,000 (a typo) passed validation and
    PostgreSQL refused it, a 500 to the enterprise and the end of a whole import run."""
    profile = create_profile(tags=[])
    owner = create_verified_user(level="face")
    enterprise = session.get(RegistryEnterprise, profile.enterprise_id)
    bind_enterprise(owner, enterprise)
    url = f"{API}/enterprises/{profile.enterprise_id}/policy-profile"

    typo = client.patch(url, json={"employees": 3_000_000_000}, headers=citizen_headers(owner))

    assert typo.status_code == 422 and typo.json["code"] == "VALIDATION_FAILED"
    assert "employees" in typo.json["details"]["fields"]["json"]
    calculator = client.post(f"{API}/policy-calculator", json={"employees": 3_000_000_000})
    assert calculator.status_code == 422

    other = create_registry_enterprise()
    path = tmp_path / "profiles.csv"
    path.write_text(
        "uscc,industry_code,town,established_on,employees,revenue_yuan,tags\n"
        f"{other.uscc},H6210,市桥街,2019-03-01,3000000000,4000000,\n"
        f"{enterprise.uscc},H6210,市桥街,2019-03-01,25,4000000,\n",
        encoding="utf-8",
    )
    from app.db import utcnow
    from app.policies import importer

    report = importer.import_csv(session, str(path), now=utcnow())
    assert len(report.rejected) == 1 and "employees" in report.rejected[0][2]
    assert report.updated == 1

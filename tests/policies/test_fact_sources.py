"""Which facts grant a benefit: a self-declared tag must not put an enterprise on a 免申即享 list.

Reproduces the review's finding: `PATCH policy-profile` with the tag 高新技术企业 put the
enterprise on the beneficiary list of 高新技术企业认定奖励 at once.
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.enterprises.models import RegistryEnterprise
from app.identity.models import StaffRole
from app.policies import criteria as crit
from app.policies import reference
from app.policies.models import EnterpriseProfile, MatchStatus, PolicyMatch

API = "/api/v1"
HIGH_TECH = "高新技术企业"


def _owner_headers(session: Session, profile: EnterpriseProfile, f: dict[str, Any]) -> Any:
    owner = f["create_verified_user"]()
    f["bind_enterprise"](owner, session.get(RegistryEnterprise, profile.enterprise_id))
    session.commit()
    return f["citizen_headers"](owner)


def _match(session: Session, policy_id: int, enterprise_id: int) -> PolicyMatch | None:
    session.expire_all()
    return session.get(PolicyMatch, (policy_id, enterprise_id))


def _officer(create_staff: Any, staff_headers: Any, department_id: int) -> dict[str, str]:
    officer = create_staff(grants=[(StaffRole.POLICY_OFFICER, None, department_id)])
    return staff_headers(officer)  # type: ignore[no-any-return]


def test_a_self_declared_tag_does_not_grant_an_automatic_benefit_until_confirmed(
    client: FlaskClient,
    session: Session,
    create_profile: Any,
    create_policy: Any,
    create_verified_user: Any,
    bind_enterprise: Any,
    citizen_headers: Any,
    create_staff: Any,
    staff_headers: Any,
) -> None:
    award = create_policy(
        {"tags_all": [HIGH_TECH]}, title="高新技术企业认定奖励", benefit_kind="award", publish=True
    )
    profile = create_profile(tags=[])
    headers = _owner_headers(
        session,
        profile,
        {
            "create_verified_user": create_verified_user,
            "bind_enterprise": bind_enterprise,
            "citizen_headers": citizen_headers,
        },
    )

    patched = client.patch(
        f"{API}/enterprises/{profile.enterprise_id}/policy-profile",
        json={"tags": [HIGH_TECH]},
        headers=headers,
    )

    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["pending_verification"] == [f"tag:{HIGH_TECH}"]
    match = _match(session, award.id, profile.enterprise_id)
    assert match is not None and match.status == MatchStatus.MAYBE  # not ELIGIBLE
    officer = _officer(create_staff, staff_headers, award.department_id)
    csv = client.get(f"{API}/staff/policies/{award.id}/beneficiaries.csv", headers=officer)
    uscc = session.get(RegistryEnterprise, profile.enterprise_id).uscc
    assert uscc not in csv.get_data(as_text=True)
    feed = client.get(f"{API}/enterprises/{profile.enterprise_id}/policy-feed", headers=headers)
    [item] = [i for i in feed.get_json()["items"] if i["policy"]["id"] == award.id]
    assert [r["result_label"] for r in item["reasons"]] == ["待核实"]

    pending = client.get(f"{API}/staff/policy-facts/pending", headers=officer)
    assert pending.status_code == 200
    assert [(p["enterprise_id"], p["facts"]) for p in pending.get_json()["items"]] == [
        (profile.enterprise_id, [f"tag:{HIGH_TECH}"])
    ]
    confirmed = client.post(
        f"{API}/staff/enterprises/{profile.enterprise_id}/policy-facts/review",
        json={"fact": f"tag:{HIGH_TECH}", "decision": "confirm", "reason": "已核对认定证书"},
        headers=officer,
    )

    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["pending_verification"] == []
    assert _match(session, award.id, profile.enterprise_id).status == MatchStatus.ELIGIBLE
    csv = client.get(f"{API}/staff/policies/{award.id}/beneficiaries.csv", headers=officer)
    assert uscc in csv.get_data(as_text=True)
    [entry] = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "policy.fact_confirmed")
    ).all()
    assert entry.details == {"fact": f"tag:{HIGH_TECH}", "reason": "已核对认定证书"}


def test_a_rejected_self_declared_fact_is_removed_and_audited(
    client: FlaskClient,
    session: Session,
    create_profile: Any,
    create_policy: Any,
    create_verified_user: Any,
    bind_enterprise: Any,
    citizen_headers: Any,
    create_staff: Any,
    staff_headers: Any,
) -> None:
    award = create_policy({"employees_min": 50}, benefit_kind="subsidy", publish=True)
    profile = create_profile(employees=10)
    headers = _owner_headers(
        session,
        profile,
        {
            "create_verified_user": create_verified_user,
            "bind_enterprise": bind_enterprise,
            "citizen_headers": citizen_headers,
        },
    )
    client.patch(
        f"{API}/enterprises/{profile.enterprise_id}/policy-profile",
        json={"employees": 80},
        headers=headers,
    )
    assert _match(session, award.id, profile.enterprise_id).status == MatchStatus.MAYBE

    officer = _officer(create_staff, staff_headers, award.department_id)
    rejected = client.post(
        f"{API}/staff/enterprises/{profile.enterprise_id}/policy-facts/review",
        json={"fact": "employees", "decision": "reject", "reason": "社保参保人数仅10人"},
        headers=officer,
    )

    assert rejected.status_code == 200, rejected.get_json()
    body = rejected.get_json()
    assert body["employees"] is None and body["pending_verification"] == []
    assert _match(session, award.id, profile.enterprise_id) is None or (
        _match(session, award.id, profile.enterprise_id).status != MatchStatus.ELIGIBLE
    )
    assert session.scalars(
        select(AuditEntry).where(AuditEntry.action == "policy.fact_rejected")
    ).one().details == {"fact": "employees", "reason": "社保参保人数仅10人"}
    again = client.post(
        f"{API}/staff/enterprises/{profile.enterprise_id}/policy-facts/review",
        json={"fact": "employees", "decision": "confirm"},
        headers=officer,
    )
    assert again.status_code == 409 and again.get_json()["code"] == "FACT_NOT_PENDING"


def test_a_policy_without_money_may_count_self_declared_facts_unless_its_criteria_say_not(
    session: Session, create_profile: Any, create_policy: Any
) -> None:
    info = create_policy(
        {"tags_all": [HIGH_TECH]}, benefit_kind="service", delivery="application",
        item_code="X1", publish=True,
    )  # fmt: skip
    strict = create_policy(
        criteria=[
            {"label": "高新技术企业", "rule": {"has_tag": HIGH_TECH}, "facts": "authoritative"}
        ],
        benefit_kind="service", delivery="application", item_code="X2", publish=True,
    )  # fmt: skip
    from app.db import utcnow
    from app.policies import profiles

    profile = create_profile(tags=[])
    profiles.update_profile(
        session, profile, {"tags": [HIGH_TECH]}, source="self", user_id=None, now=utcnow()
    )

    assert _match(session, info.id, profile.enterprise_id).status == MatchStatus.ELIGIBLE
    assert _match(session, strict.id, profile.enterprise_id).status == MatchStatus.MAYBE


def test_the_sql_and_python_evaluators_agree_on_unverified_facts() -> None:
    rule = {"and": [{"has_tag": HIGH_TECH}, {">=": [{"var": "employees"}, 50]}]}
    bit = reference.TAG_BITS[HIGH_TECH]
    values = {"tag_bits": bit, "employees": 80, "unverified_tag_bits": bit, "unverified_fields": 0}
    criterion = crit.Criterion("c1", "x", rule, facts="authoritative")
    [result] = crit.evaluate_all([criterion], values)
    assert result.result is crit.Tri.UNKNOWN
    loose = crit.Criterion("c1", "x", rule)
    assert crit.evaluate_all([loose], values)[0].result is crit.Tri.PASS

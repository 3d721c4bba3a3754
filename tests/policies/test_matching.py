"""Publishing matches set-based and stores reasons; profile changes re-match; lifecycle rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.policies import profiles, service
from app.policies.errors import PolicyExpired, PolicyStateConflict
from app.policies.models import (
    MatchStatus,
    Policy,
    PolicyMatch,
    PolicyPush,
    PolicyStatus,
    ProfileChange,
)

EXPORT_FORM = {"tags_all": ["出口企业"], "size_classes": ["small", "micro"], "article": "第三条"}


def matches(session: Session, policy_id: int) -> dict[int, PolicyMatch]:
    return {
        m.enterprise_id: m
        for m in session.scalars(select(PolicyMatch).where(PolicyMatch.policy_id == policy_id))
    }


def test_publish_stores_eligible_and_maybe_with_results(
    session: Session, create_profile: Any, create_policy: Any
) -> None:
    small_exporter = create_profile(employees=30, revenue_yuan=8_000_000, tags=["出口企业"])
    large_exporter = create_profile(employees=2000, revenue_yuan=900_000_000, tags=["出口企业"])
    unknown_size = create_profile(employees=None, revenue_yuan=None, tags=["出口企业"])
    not_exporter = create_profile(tags=[])
    policy = create_policy(EXPORT_FORM, publish=True)
    found = matches(session, policy.id)
    assert set(found) == {small_exporter.enterprise_id, unknown_size.enterprise_id}
    assert found[small_exporter.enterprise_id].status == MatchStatus.ELIGIBLE
    assert found[small_exporter.enterprise_id].results == "PP"
    assert found[unknown_size.enterprise_id].status == MatchStatus.MAYBE
    assert large_exporter.enterprise_id not in found and not_exporter.enterprise_id not in found


def test_preview_counts_near_misses_per_criterion(
    session: Session, create_profile: Any, create_policy: Any
) -> None:
    create_profile(tags=["出口企业"])
    create_profile(tags=[])  # fails only the exporter criterion
    policy = create_policy(EXPORT_FORM)
    preview = service.preview(session, policy)
    assert (preview.eligible, preview.maybe) == (1, 0)
    tag_criterion = next(
        c for c in service.current_criteria(session, policy) if c.rule.get("has_tag")
    )
    assert preview.near_misses == {
        c.id: (1 if c.id == tag_criterion.id else 0)
        for c in service.current_criteria(session, policy)
    }


def test_profile_change_rematches_and_queues_a_push(
    session: Session,
    create_profile: Any,
    create_policy: Any,
    create_user: Any,
    bind_enterprise: Any,
) -> None:
    profile = create_profile(tags=[])
    user = create_user()
    bind_enterprise(user, session.get(profiles.RegistryEnterprise, profile.enterprise_id))
    # A policy that pays no money: the enterprise's own declaration counts (a paying one
    # waits for an officer's confirmation, tests/policies/test_fact_sources.py).
    policy = create_policy(
        EXPORT_FORM, benefit_kind="service", delivery="application", item_code="X1", publish=True
    )
    assert profile.enterprise_id not in matches(session, policy.id)

    values = profiles.clean({"tags": ["出口企业"]}, profiles.SELF_DECLARED)
    profiles.update_profile(session, profile, values, source="self", user_id=user.id, now=utcnow())
    assert matches(session, policy.id)[profile.enterprise_id].status == MatchStatus.ELIGIBLE
    pushes = session.scalars(select(PolicyPush).where(PolicyPush.policy_id == policy.id)).all()
    assert [(p.user_id, p.status) for p in pushes] == [(user.id, "waiting")]
    change = session.scalars(
        select(ProfileChange).where(ProfileChange.enterprise_id == profile.enterprise_id)
    ).all()[-1]
    assert change.source == "self" and change.changes["tags"] == [[], ["出口企业"]]

    # Growing out of the size class removes the match.
    values = profiles.clean({"employees": 5000, "revenue_yuan": 10**10}, profiles.SELF_DECLARED)
    profiles.update_profile(session, profile, values, source="self", user_id=user.id, now=utcnow())
    assert profile.size_class == "large"
    assert profile.enterprise_id not in matches(session, policy.id)


def test_lifecycle_rules(session: Session, create_policy: Any) -> None:
    expired = create_policy(EXPORT_FORM, expires_on=dt.date(2020, 1, 1))
    with pytest.raises(PolicyExpired):
        service.publish(session, expired, staff_id=None, now=utcnow())
    policy = create_policy(EXPORT_FORM, publish=True)
    with pytest.raises(PolicyStateConflict):
        service.publish(session, policy, staff_id=None, now=utcnow())
    service.withdraw(session, policy, reason="政策调整", staff_id=None, now=utcnow())
    assert policy.status == PolicyStatus.WITHDRAWN
    with pytest.raises(PolicyStateConflict):
        service.withdraw(session, policy, reason="again", staff_id=None, now=utcnow())


def test_editing_criteria_makes_a_new_version_and_rematches(
    session: Session, create_profile: Any, create_policy: Any
) -> None:
    hightech = create_profile(tags=["高新技术企业"])
    policy = create_policy(EXPORT_FORM, publish=True)
    assert hightech.enterprise_id not in matches(session, policy.id)
    criteria = service.parse_input_criteria({"criteria_form": {"tags_all": ["高新技术企业"]}}, "x")
    service.edit_policy(session, policy, fields={}, criteria=criteria, staff_id=None, now=utcnow())
    assert policy.criteria_version == 2
    assert matches(session, policy.id)[hightech.enterprise_id].criteria_version == 2


def test_calculator_and_near_misses_store_nothing(
    session: Session, create_profile: Any, create_policy: Any
) -> None:
    create_policy({"tags_all": ["高新技术企业"], "industry_include": ["C"]}, publish=True)
    values = {
        "industry_code": "C3872", "town": "市桥街", "established_on": None, "employees": 30,
        "revenue_yuan": 8_000_000, "size_class": "small", "tag_bits": 0,
    }  # fmt: skip
    before = session.scalar(
        select(PolicyMatch.policy_id).limit(1).order_by(PolicyMatch.policy_id.desc())
    )
    result = service.calculate(session, values, now=utcnow())
    assert any(m["hint"] == "若取得高新技术企业认定即可申报" for m in result["near_misses"])
    after = session.scalar(
        select(PolicyMatch.policy_id).limit(1).order_by(PolicyMatch.policy_id.desc())
    )
    assert before == after


def test_criteria_read_before_a_rollback_are_not_remembered(
    session: Session, create_policy: Any
) -> None:
    """The app keeps each (policy, version)'s criteria once read. A version written by a
    transaction that then rolls back is written again, differently, by the next edit: what the
    first transaction read of it must not outlive it."""
    policy = create_policy(EXPORT_FORM)
    session.commit()
    parse = service.parse_input_criteria
    exporters = parse({"criteria_form": {"tags_all": ["出口企业"], "article": "第五条"}}, "x")
    hightech = parse({"criteria_form": {"tags_all": ["高新技术企业"], "article": "第六条"}}, "x")

    service.edit_policy(session, policy, fields={}, criteria=exporters, staff_id=None, now=utcnow())
    assert articles(session, policy) == ["第五条"]  # read inside the edit
    session.rollback()

    service.edit_policy(session, policy, fields={}, criteria=hightech, staff_id=None, now=utcnow())
    session.commit()
    assert policy.criteria_version == 2
    assert articles(session, policy) == ["第六条"]


def articles(session: Session, policy: Policy) -> list[str]:
    return [c.article for c in service.current_criteria(session, policy)]

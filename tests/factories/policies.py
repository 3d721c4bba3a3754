"""Factories for enterprise profiles and policies."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.db import utcnow
from app.enterprises.models import RegistryEnterprise
from app.organisation.models import Department
from app.policies import criteria as crit
from app.policies import profiles, reference, service
from app.policies.models import EnterpriseProfile, Policy

_serial = itertools.count(1)


@pytest.fixture
def create_profile(
    session: Session, create_registry_enterprise: Callable[..., RegistryEnterprise]
) -> Callable[..., EnterpriseProfile]:
    """A registry enterprise with a profile: `create_profile(employees=12, tags=[...])`."""

    def create(enterprise: RegistryEnterprise | None = None, **values: Any) -> EnterpriseProfile:
        enterprise = enterprise or create_registry_enterprise()
        profile = profiles.ensure_profile(session, enterprise, now=utcnow())
        values.setdefault("industry_code", "C3872")
        values.setdefault("employees", 30)
        values.setdefault("revenue_yuan", 8_000_000)
        values.setdefault("tags", [])
        profiles.update_profile(
            session,
            profile,
            profiles.clean(values, profiles.IMPORTED),
            source="import",
            user_id=None,
            now=utcnow(),
            rematch=False,
        )
        return profile

    return create


@pytest.fixture
def policy_department(create_department: Callable[..., Department]) -> Department:
    return create_department()


@pytest.fixture
def create_policy(session: Session, policy_department: Department) -> Callable[..., Policy]:
    """A draft (or published, `publish=True`) policy from a criteria form or raw criteria."""

    def create(
        form: dict[str, Any] | None = None,
        *,
        criteria: list[dict[str, Any]] | None = None,
        publish: bool = False,
        department: Department | None = None,
        now: dt.datetime | None = None,
        **fields: Any,
    ) -> Policy:
        n = next(_serial)
        fields.setdefault("title", f"测试政策{n}")
        fields.setdefault("doc_number", f"番测〔2024〕{n}号")
        fields.setdefault("summary", "支持小微企业发展的测试政策")
        fields.setdefault("benefit_kind", "subsidy")
        fields.setdefault("delivery", "automatic")
        parsed = (
            crit.parse_criteria(criteria, default_doc=fields["doc_number"])
            if criteria is not None
            else crit.from_structured(
                form or {"tags_all": [reference.Tag.EXPORTER.value]}, doc=fields["doc_number"]
            )
        )
        policy = service.create_policy(
            session,
            department_id=(department or policy_department).id,
            fields=fields,
            criteria=parsed,
            staff_id=None,
            now=now or utcnow(),
        )
        if publish:
            service.publish(session, policy, staff_id=None, now=now or utcnow())
        session.flush()
        return policy

    return create

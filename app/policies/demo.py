"""Demo data: profiles for the demo registry, synthetic enterprises, the seed-like policies."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.enterprises.models import RegistryEnterprise
from app.organisation.models import Department
from app.policies import criteria as crit
from app.policies import generate, service
from app.policies.matching import today
from app.policies.models import EnterpriseProfile, Policy

_PROFILE_KEYS = (
    "industry_code", "town", "established_on", "employees", "revenue_yuan", "size_class",
    "tag_bits",
)  # fmt: skip


def insert_synthetic(session: Session, count: int, rng: random.Random, *, start: int = 0) -> int:
    """Insert `count` synthetic enterprises and their profiles, 5,000 rows per statement."""
    now = dt.datetime.now(dt.UTC)
    inserted = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal inserted
        if not batch:
            return
        ids = session.execute(
            insert(RegistryEnterprise).returning(RegistryEnterprise.id),
            [
                {k: v for k, v in row.items() if not k.startswith("profile_")} | {"synced_at": now}
                for row in batch
            ],
        ).scalars()
        profiles = [
            {"enterprise_id": enterprise_id, "updated_at": now}
            | {k: row[f"profile_{k}"] for k in _PROFILE_KEYS}
            for enterprise_id, row in zip(ids, batch, strict=True)
        ]
        session.execute(insert(EnterpriseProfile), profiles)
        inserted += len(batch)
        batch.clear()

    for row in generate.enterprises(count, rng, start=start):
        batch.append(row)
        if len(batch) >= 5000:
            flush()
    flush()
    return inserted


def seed_policies(session: Session, *, now: dt.datetime) -> list[Policy]:
    """Profiles for registry rows lacking one, and the demo policies, published (idempotent)."""
    rng = random.Random(4754)  # noqa: S311 (repeatable demo data)  # nosec B311  # repeatable demo data, never a secret
    missing = session.scalars(
        select(RegistryEnterprise)
        .outerjoin(EnterpriseProfile, EnterpriseProfile.enterprise_id == RegistryEnterprise.id)
        .where(EnterpriseProfile.enterprise_id.is_(None))
    ).all()
    for enterprise in missing:
        values = generate.profile_for(rng)
        values["town"] = enterprise.registered_town or values["town"]
        values["established_on"] = enterprise.established_on or values["established_on"]
        session.add(EnterpriseProfile(enterprise_id=enterprise.id, updated_at=now, **values))
    session.flush()
    departments = {d.code: d for d in session.scalars(select(Department))}
    existing = {p.doc_number: p for p in session.scalars(select(Policy))}
    out = []
    for spec in generate.demo_policies(today(now)):
        if spec["doc_number"] in existing or spec["department"] not in departments:
            continue
        spec = dict(spec)
        form = spec.pop("criteria_form")
        department = departments[spec.pop("department")]
        criteria = crit.from_structured(form, doc=spec["doc_number"])
        policy = service.create_policy(
            session, department_id=department.id, fields=spec, criteria=criteria,
            staff_id=None, now=now,
        )  # fmt: skip
        service.publish(session, policy, staff_id=None, now=now)
        out.append(policy)
    return out

"""Enterprise profiles: created from the registry, updated by import or by the enterprise.

Every change is kept as a `ProfileChange` (old -> new per field), and a changed profile is
re-matched against every active policy in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.enterprises.models import RegistryEnterprise
from app.policies import reference
from app.policies.errors import InvalidProfile
from app.policies.models import EnterpriseProfile, ProfileChange

# What the enterprise's own users may declare; town and establishment date are the registry's.
SELF_DECLARED = ("industry_code", "employees", "revenue_yuan", "tags")
IMPORTED = ("industry_code", "town", "established_on", "employees", "revenue_yuan", "tags")


def clean(values: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """Validate profile fields; raise InvalidProfile naming the field."""
    allowed = set(allowed)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in allowed:
            raise InvalidProfile(f"不能修改字段：{key}", field=key)
        if value is None:
            out[key] = None
        elif key == "industry_code":
            code = reference.normalise_industry_code(str(value))
            if not reference.is_valid_industry_code(code):
                raise InvalidProfile(f"未知的行业代码：{value}", field=key)
            out[key] = code
        elif key == "town":
            if value not in reference.TOWNS:
                raise InvalidProfile(f"未知的镇街：{value}", field=key)
            out[key] = value
        elif key in ("employees", "revenue_yuan"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**15:
                raise InvalidProfile("须为非负整数", field=key)
            out[key] = value
        elif key == "established_on":
            if not isinstance(value, dt.date):
                raise InvalidProfile("日期格式有误", field=key)
            out[key] = value
        elif key == "tags":
            unknown = [t for t in value if t not in reference.TAG_BITS]
            if unknown:
                raise InvalidProfile(f"未知的企业标签：{'、'.join(unknown)}", field=key)
            out[key] = sorted(set(value), key=reference.TAGS.index)
    return out


def ensure_profile(
    session: Session, enterprise: RegistryEnterprise, *, now: dt.datetime
) -> EnterpriseProfile:
    """The enterprise's profile, created from its registry row on first use."""
    profile = session.get(EnterpriseProfile, enterprise.id)
    if profile is None:
        code = enterprise.industry_code
        profile = EnterpriseProfile(
            enterprise_id=enterprise.id,
            industry_code=code if code and reference.is_valid_industry_code(code) else None,
            town=enterprise.registered_town
            if enterprise.registered_town in reference.TOWNS
            else None,
            established_on=enterprise.established_on,
            updated_at=now,
        )
        session.add(profile)
        session.flush()
    return profile


def _current(profile: EnterpriseProfile, key: str) -> Any:
    if key == "tags":
        return reference.bits_to_tags(profile.tag_bits)
    return getattr(profile, key)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def update_profile(
    session: Session,
    profile: EnterpriseProfile,
    values: Mapping[str, Any],
    *,
    source: str,
    user_id: int | None,
    now: dt.datetime,
    rematch: bool = True,
) -> dict[str, list[Any]]:
    """Apply cleaned values; record the change and re-match when anything changed."""
    changes: dict[str, list[Any]] = {}
    for key, value in values.items():
        old = _current(profile, key)
        if old == value:
            continue
        changes[key] = [_json(old), _json(value)]
        if key == "tags":
            profile.tag_bits = None if value is None else reference.tags_to_bits(value)
        else:
            setattr(profile, key, value)
    if not changes:
        return changes
    size = reference.size_class(profile.industry_code, profile.employees, profile.revenue_yuan)
    new_size = size.value if size else None
    if new_size != profile.size_class:
        changes["size_class"] = [profile.size_class, new_size]
        profile.size_class = new_size
    profile.updated_at = now
    session.add(
        ProfileChange(
            enterprise_id=profile.enterprise_id,
            source=source,
            user_id=user_id,
            changes=changes,
            created_at=now,
        )
    )
    session.flush()
    if rematch:
        from app.policies import push
        from app.policies.matching import rematch_enterprise

        newly_eligible = rematch_enterprise(session, profile.enterprise_id, now=now)
        push.create_pushes(session, newly_eligible, now=now, enterprise_id=profile.enterprise_id)
    return changes

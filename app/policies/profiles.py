"""Enterprise profiles: created from the registry, updated by import or by the enterprise.

Every change is kept as a `ProfileChange` (old -> new per field), and a changed profile is
re-matched against every active policy in the same transaction. Each fact remembers where it
came from (`fact_sources`): what the enterprise declares itself stays "待核实" (unverified)
until an officer confirms it, and until then does not count where authoritative facts are
required (every policy that pays money).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.enterprises.models import RegistryEnterprise
from app.policies import reference
from app.policies.errors import FactNotPending, InvalidProfile
from app.policies.models import EnterpriseProfile, ProfileChange

# What the enterprise's own users may declare; town and establishment date are the registry's.
# Beyond any employer (the largest have a few million staff), and within the 32-bit column
# it is stored in: a typo is refused as such, not by the database as a server error.
MAX_EMPLOYEES = 10_000_000
MAX_REVENUE_YUAN = 10**15
SELF_DECLARED = ("industry_code", "employees", "revenue_yuan", "tags")
# Sources whose word is authoritative (a department's data, the registry, an officer's check).
SELF = "self"
TAG_FACT = "tag:"
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
            limit = MAX_EMPLOYEES if key == "employees" else MAX_REVENUE_YUAN
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise InvalidProfile(f"须为不超过 {limit} 的非负整数", field=key)
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


def _from_registry(enterprise: RegistryEnterprise, *, now: dt.datetime) -> EnterpriseProfile:
    """A profile as the registry row alone describes the enterprise (not added to a session)."""
    code = enterprise.industry_code
    return EnterpriseProfile(
        enterprise_id=enterprise.id,
        industry_code=code if code and reference.is_valid_industry_code(code) else None,
        town=enterprise.registered_town if enterprise.registered_town in reference.TOWNS else None,
        established_on=enterprise.established_on,
        unverified_fields=0,
        unverified_tag_bits=0,
        fact_sources={},
        updated_at=now,
    )


def ensure_profile(
    session: Session, enterprise: RegistryEnterprise, *, now: dt.datetime
) -> EnterpriseProfile:
    """The enterprise's profile, created from its registry row on first use (writes)."""
    profile = session.get(EnterpriseProfile, enterprise.id)
    if profile is None:
        profile = _from_registry(enterprise, now=now)
        session.add(profile)
        session.flush()
    return profile


def profile_for_reading(
    session: Session, enterprise: RegistryEnterprise, *, now: dt.datetime
) -> EnterpriseProfile:
    """The stored profile, or the registry's view of the enterprise when none is stored yet:
    what a read shows, without writing anything."""
    return session.get(EnterpriseProfile, enterprise.id) or _from_registry(enterprise, now=now)


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
    _record_sources(profile, values, changes, source=source, now=now)
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
        _rematch(session, profile, now=now)
    return changes


def _rematch(session: Session, profile: EnterpriseProfile, *, now: dt.datetime) -> None:
    from app.policies import push_schedule
    from app.policies.matching import rematch_enterprise

    newly_eligible = rematch_enterprise(session, profile.enterprise_id, now=now)
    push_schedule.create_pushes(
        session, newly_eligible, now=now, enterprise_id=profile.enterprise_id
    )


def _record_sources(
    profile: EnterpriseProfile,
    values: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    source: str,
    now: dt.datetime,
) -> None:
    """Remember where each changed fact came from; self-declared ones wait for confirmation."""
    sources = dict(profile.fact_sources or {})
    stamp = {"source": source, "at": now.isoformat()}
    fields = profile.unverified_fields or 0
    for key in changes:
        if key not in reference.FACT_BITS and key not in ("town", "established_on"):
            continue
        sources[key] = stamp
        bit = reference.FACT_BITS.get(key, 0)
        fields = fields | bit if source == SELF else fields & ~bit
    if "tags" in changes:
        old = reference.tags_to_bits(changes["tags"][0] or [])
        new = reference.tags_to_bits(values["tags"] or [])
        unverified = (profile.unverified_tag_bits or 0) & new  # removed tags need no check
        if source == SELF:
            unverified |= new & ~old
        else:
            unverified &= ~new
        profile.unverified_tag_bits = unverified
        for tag in reference.bits_to_tags(new & ~old) or []:
            sources[TAG_FACT + tag] = stamp
        for tag in reference.bits_to_tags(old & ~new) or []:
            sources.pop(TAG_FACT + tag, None)
    # size_class follows the fields it is computed from.
    inputs = reference.FACT_BITS["industry_code"] | reference.FACT_BITS["employees"]
    inputs |= reference.FACT_BITS["revenue_yuan"]
    size_bit = reference.FACT_BITS["size_class"]
    profile.unverified_fields = (fields | size_bit) if fields & inputs else (fields & ~size_bit)
    profile.fact_sources = sources


def pending_facts(profile: EnterpriseProfile) -> list[str]:
    """The self-declared facts still waiting for an officer (待核实): fields, then tags."""
    fields = profile.unverified_fields or 0
    out = [
        key
        for key, bit in reference.FACT_BITS.items()
        if fields & bit and key != "size_class"  # follows the others: not reviewed itself
    ]
    out += [
        TAG_FACT + tag for tag in (reference.bits_to_tags(profile.unverified_tag_bits or 0) or [])
    ]
    return out


def review_fact(
    session: Session,
    profile: EnterpriseProfile,
    fact: str,
    *,
    confirm: bool,
    staff_id: int,
    reason: str,
    now: dt.datetime,
) -> EnterpriseProfile:
    """An officer confirms a self-declared fact (it becomes authoritative) or rejects it (the
    value is withdrawn: unknown for a field, absent for a tag). Audited; re-matched."""
    if fact not in pending_facts(profile):
        raise FactNotPending(fact=fact)
    if confirm:
        if fact.startswith(TAG_FACT):
            profile.unverified_tag_bits &= ~reference.TAG_BITS[fact[len(TAG_FACT) :]]
        else:
            profile.unverified_fields &= ~reference.FACT_BITS[fact]
            inputs = profile.unverified_fields & ~reference.FACT_BITS["size_class"]
            if not inputs:
                profile.unverified_fields = 0
        sources = dict(profile.fact_sources or {})
        sources[fact] = {"source": "officer", "at": now.isoformat(), "staff_id": staff_id}
        profile.fact_sources = sources
        profile.updated_at = now
        session.flush()
    elif fact.startswith(TAG_FACT):
        withdrawn = fact[len(TAG_FACT) :]
        tags = [t for t in reference.bits_to_tags(profile.tag_bits or 0) or [] if t != withdrawn]
        update_profile(
            session, profile, {"tags": tags}, source="staff", user_id=None, now=now, rematch=False
        )
    else:
        update_profile(
            session, profile, {fact: None}, source="staff", user_id=None, now=now, rematch=False
        )
    record(
        session,
        "policy.fact_confirmed" if confirm else "policy.fact_rejected",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="enterprise",
        subject_id=profile.enterprise_id,
        details={"fact": fact, "reason": reason},
    )
    _rematch(session, profile, now=now)
    return profile


def awaiting_review(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    """Enterprises with self-declared facts waiting for an officer, longest waiting first."""
    rows = session.execute(
        select(EnterpriseProfile, RegistryEnterprise)
        .join(RegistryEnterprise, RegistryEnterprise.id == EnterpriseProfile.enterprise_id)
        .where(
            or_(
                EnterpriseProfile.unverified_fields != 0, EnterpriseProfile.unverified_tag_bits != 0
            )
        )
        .order_by(EnterpriseProfile.updated_at, EnterpriseProfile.enterprise_id)
        .limit(limit)
    ).all()
    return [
        {
            "enterprise_id": profile.enterprise_id,
            "uscc": enterprise.uscc,
            "name": enterprise.name,
            "facts": pending_facts(profile),
            "updated_at": profile.updated_at,
        }
        for profile, enterprise in rows
    ]


def history(session: Session, enterprise_id: int, *, limit: int = 200) -> list[ProfileChange]:
    """The profile's changes, newest first."""
    return list(
        session.scalars(
            select(ProfileChange)
            .where(ProfileChange.enterprise_id == enterprise_id)
            .order_by(ProfileChange.id.desc())
            .limit(limit)
        )
    )

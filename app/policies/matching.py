"""Matching: all enterprises against one policy in SQL, one enterprise against all in Python.

`match_policy` is set-based: one INSERT ... SELECT stores the enterprises whose criteria all
pass (eligible) or none fail (maybe), with the per-criterion results string computed in the
database. `rematch_enterprise` runs the Python evaluator over the active policies for one
profile (the path a profile change takes). Both use `criteria.py`, whose two evaluators a
randomised test keeps in agreement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from app.calendar import LOCAL_TZ
from app.enterprises.models import RegistryEnterprise, RegistryStatus
from app.policies import criteria as crit
from app.policies import push_schedule
from app.policies.models import (
    EnterpriseProfile,
    MatchStatus,
    Policy,
    PolicyCriteria,
    PolicyMatch,
    PolicyStatus,
)

ACTIVE_REGISTRY = [s.value for s in RegistryStatus if s.is_active]
PROFILE_FIELDS = (
    "industry_code",
    "town",
    "size_class",
    "established_on",
    "employees",
    "revenue_yuan",
    "tag_bits",
    "unverified_fields",
    "unverified_tag_bits",
)
MATCH_WORK_MEM = "256MB"  # PostgreSQL working memory of a policy's match transaction
COLUMNS: dict[str, Any] = {name: EnterpriseProfile.__table__.c[name] for name in PROFILE_FIELDS}


def today(now: dt.datetime) -> dt.date:
    """The Shanghai calendar date at `now`."""
    return now.astimezone(LOCAL_TZ).date()


def active_policy_filter(now: dt.datetime) -> ColumnElement[bool]:
    """Published and not past its expiry date (the expiry date itself still counts)."""
    return and_(
        Policy.status == PolicyStatus.PUBLISHED,
        or_(Policy.expires_on.is_(None), Policy.expires_on >= today(now)),
    )


def profile_values(profile: EnterpriseProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in PROFILE_FIELDS}


class CriteriaCache:
    """Criteria by (policy, version): a version never changes once committed, so it is read
    once per app (kept on `app.extensions["policy_criteria"]`, built by `init_app`)."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], list[crit.Criterion]] = {}

    def get(self, key: tuple[int, int]) -> list[crit.Criterion] | None:
        return self._entries.get(key)

    def put(self, key: tuple[int, int], criteria: list[crit.Criterion]) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()  # rarer than a policy edit: start again rather than track age
        self._entries[key] = criteria

    def clear(self) -> None:
        self._entries.clear()


def _criteria_cache() -> CriteriaCache | None:
    return current_app.extensions.get("policy_criteria") if has_app_context() else None


# The (policy, version) pairs a session wrote criteria for (`note_written_criteria`).
_WRITTEN_KEY = "policy_criteria_written"


def note_written_criteria(session: Session, policy_id: int, version: int) -> None:
    """`session` stores criteria as this version: until it commits, they are not the version's."""
    session.info.setdefault(_WRITTEN_KEY, set()).add((policy_id, version))


def criteria_of(session: Session, policy_id: int, version: int) -> list[crit.Criterion]:
    """A policy's criteria at `version` (cached by the app: a committed version never changes).

    Only a committed version is remembered. Criteria this session wrote may still be rolled
    back, and the next edit then writes the same version number with other criteria; a version
    with no row yet has nothing to remember."""
    cache = _criteria_cache()
    key = (policy_id, version)
    found = cache.get(key) if cache is not None else None
    if found is None:
        stored = session.scalar(
            select(PolicyCriteria.criteria).where(
                PolicyCriteria.policy_id == policy_id, PolicyCriteria.version == version
            )
        )
        found = crit.load(stored or [])
        written_here = key in session.info.get(_WRITTEN_KEY, ())
        if cache is not None and stored is not None and not written_here:
            cache.put(key, found)
    return found


def _status_of(results: str) -> MatchStatus | None:
    if "F" in results:
        return None
    return MatchStatus.MAYBE if "U" in results else MatchStatus.ELIGIBLE


def _profiles_with_results(criteria: Sequence[crit.Criterion]) -> Any:
    """SELECT enterprise_id, results for every active enterprise's profile (a subquery)."""
    results = crit.results_sql(criteria, COLUMNS).label("results")
    return (
        select(EnterpriseProfile.enterprise_id, results)
        .join(RegistryEnterprise, RegistryEnterprise.id == EnterpriseProfile.enterprise_id)
        .where(RegistryEnterprise.status.in_(ACTIVE_REGISTRY))
    )


def match_policy(
    session: Session,
    policy_id: int,
    version: int,
    criteria: Sequence[crit.Criterion],
    *,
    now: dt.datetime,
) -> int:
    """Store every enterprise matching the policy (replacing earlier matches); return count.

    The waiting pushes of enterprises no longer eligible are cancelled with the matches they
    came from: a push held by the quiet hours or the caps would tell them they qualify."""
    if session.get_bind().dialect.name == "postgresql":
        # Millions of profiles joined to the registry: in the default 4 MB the join spills to
        # disk batch by batch and a district of 12M took 25 s instead of 16. For this
        # transaction only (publishing a policy is rare).
        session.execute(text(f"SET LOCAL work_mem = '{MATCH_WORK_MEM}'"))
    session.execute(delete(PolicyMatch).where(PolicyMatch.policy_id == policy_id))
    # "No criterion fails", written so the database can stop at the first failing one.
    none_fails = and_(
        *[crit.to_sql(c.rule, crit.columns_for(c, COLUMNS)).is_not(false()) for c in criteria]
    )
    inner = _profiles_with_results(criteria).where(none_fails).subquery()
    status_expr = case(
        (inner.c.results.contains("U"), literal(MatchStatus.MAYBE.value)),
        else_=literal(MatchStatus.ELIGIBLE.value),
    )
    source = select(
        literal(policy_id),
        inner.c.enterprise_id,
        literal(version),
        status_expr,
        inner.c.results,
        literal(now, type_=PolicyMatch.__table__.c.matched_at.type),
    )
    # INSERT ... SELECT's rowcount saves counting the stored rows again; some driver paths
    # report -1 for it, and then they are counted.
    result = session.connection().execute(
        insert(PolicyMatch).from_select(
            ["policy_id", "enterprise_id", "criteria_version", "status", "results", "matched_at"],
            source,
        )
    )
    push_schedule.cancel_pushes(
        session, policy_id, reason=push_schedule.NO_LONGER_ELIGIBLE, unless_eligible=True
    )
    if result.rowcount >= 0:
        return int(result.rowcount)
    stored = session.scalar(
        select(func.count()).select_from(PolicyMatch).where(PolicyMatch.policy_id == policy_id)
    )
    return int(stored or 0)


@dataclass(frozen=True)
class Preview:
    """What a policy's criteria would reach now, before publishing."""

    eligible: int
    maybe: int
    # criterion id -> enterprises failing that criterion only (all others pass).
    near_misses: dict[str, int]


def preview(session: Session, criteria: Sequence[crit.Criterion]) -> Preview:
    """Count eligible, maybe and near-miss enterprises, set-based, storing nothing."""
    n = len(criteria)
    near = {"P" * i + "F" + "P" * (n - i - 1): criteria[i].id for i in range(n)}
    inner = _profiles_with_results(criteria).subquery()
    rows = session.execute(
        select(inner.c.results, func.count())
        .where(or_(not_(inner.c.results.contains("F")), inner.c.results.in_(list(near))))
        .group_by(inner.c.results)
    ).all()
    eligible = maybe = 0
    near_misses = {c.id: 0 for c in criteria}
    for row in rows:
        results, count = str(row[0]), int(row[1])
        if results in near:
            near_misses[near[results]] += count
        elif "U" in results:
            maybe += count
        else:
            eligible += count
    return Preview(eligible, maybe, near_misses)


@dataclass(frozen=True)
class Evaluation:
    """One policy evaluated on one profile."""

    policy_id: int
    version: int
    results: list[crit.CriterionResult]

    @property
    def string(self) -> str:
        return crit.results_string(self.results)

    @property
    def status(self) -> MatchStatus | None:
        return _status_of(self.string)

    @property
    def near_miss(self) -> crit.CriterionResult | None:
        """The one failing criterion when every other passes."""
        failing = [r for r in self.results if r.result is crit.Tri.FAIL]
        if len(failing) == 1 and all(r.result is not crit.Tri.UNKNOWN for r in self.results):
            return failing[0]
        return None


def active_policy_versions(session: Session, now: dt.datetime) -> list[tuple[int, int]]:
    return [
        (row.id, row.criteria_version)
        for row in session.execute(
            select(Policy.id, Policy.criteria_version)
            .where(active_policy_filter(now), Policy.criteria_version > 0)
            .order_by(Policy.id)
        )
    ]


def evaluate_profile(
    session: Session,
    values: Mapping[str, Any],
    now: dt.datetime,
    versions: list[tuple[int, int]] | None = None,
) -> list[Evaluation]:
    """Every active policy evaluated on a profile's values (stored or typed in)."""
    return [
        Evaluation(pid, version, crit.evaluate_all(criteria_of(session, pid, version), values))
        for pid, version in (versions or active_policy_versions(session, now))
    ]


def rematch_enterprise(session: Session, enterprise_id: int, *, now: dt.datetime) -> list[int]:
    """Re-match one enterprise against every active policy; return newly eligible policy ids.

    Matches of policies it no longer meets are removed; the feed marks stay. The waiting
    pushes of policies it is no longer eligible for (match removed, or only "maybe" now) are
    cancelled: held by the quiet hours or the caps, they would tell it that it qualifies.
    """
    profile = session.get(EnterpriseProfile, enterprise_id)
    registry = session.get(RegistryEnterprise, enterprise_id)
    versions = active_policy_versions(session, now)
    evaluations = (
        evaluate_profile(session, profile_values(profile), now, versions)
        if profile is not None and registry is not None and registry.is_active
        else []
    )
    wanted = {e.policy_id: e for e in evaluations if e.status is not None}
    active_ids = [pid for pid, _ in versions]
    existing = {
        m.policy_id: m
        for m in session.scalars(
            select(PolicyMatch).where(
                PolicyMatch.enterprise_id == enterprise_id, PolicyMatch.policy_id.in_(active_ids)
            )
        )
    }
    stale = [pid for pid in existing if pid not in wanted]
    no_longer_eligible = [
        pid
        for pid, match in existing.items()
        if match.status is MatchStatus.ELIGIBLE
        and (pid not in wanted or wanted[pid].status is not MatchStatus.ELIGIBLE)
    ]
    if stale:
        session.execute(
            delete(PolicyMatch).where(
                PolicyMatch.enterprise_id == enterprise_id, PolicyMatch.policy_id.in_(stale)
            )
        )
        for pid in stale:
            session.expunge(existing[pid])
    newly_eligible: list[int] = []
    rows = []
    for pid, evaluation in wanted.items():
        match = existing.get(pid)
        status = evaluation.status
        assert status is not None
        if status is MatchStatus.ELIGIBLE and (match is None or match.status != status):
            newly_eligible.append(pid)
        if match is None:
            rows.append(
                {
                    "policy_id": pid,
                    "enterprise_id": enterprise_id,
                    "criteria_version": evaluation.version,
                    "status": status,
                    "results": evaluation.string,
                    "matched_at": now,
                }
            )
        elif (match.status, match.results, match.criteria_version) != (
            status,
            evaluation.string,
            evaluation.version,
        ):
            match.status = status
            match.results = evaluation.string
            match.criteria_version = evaluation.version
            match.matched_at = now
    if rows:
        session.execute(insert(PolicyMatch), rows)
    if no_longer_eligible:
        push_schedule.cancel_pushes(
            session,
            no_longer_eligible,
            reason=push_schedule.NO_LONGER_ELIGIBLE,
            enterprise_id=enterprise_id,
        )
    session.flush()
    return newly_eligible

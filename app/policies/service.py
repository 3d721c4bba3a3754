"""Policies: drafting, versioned criteria, publishing, withdrawal, reach; the enterprise feed.

Services take the session, the acting staff or user and `now`; they flush, never commit.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.enterprises.models import RegistryEnterprise
from app.organisation.models import Department
from app.policies import criteria as crit
from app.policies import matching, push_message, push_schedule
from app.policies.errors import (
    DepartmentNotFound,
    NotAutomatic,
    PolicyExpired,
    PolicyHasNoCriteria,
    PolicyNotFound,
    PolicyStateConflict,
)
from app.policies.models import (
    BenefitKind,
    Delivery,
    EnterpriseProfile,
    FeedMark,
    MatchStatus,
    Policy,
    PolicyCriteria,
    PolicyMatch,
    PolicyPush,
    PolicyStatus,
    PushOptOut,
    PushStatus,
    ReceivingAccount,
)

EDITABLE = (
    "title", "doc_number", "summary", "source_url", "benefit_kind", "benefit_amount_yuan",
    "delivery", "item_code", "expires_on",
)  # fmt: skip


def _search_text(policy: Policy) -> str:
    return f"{policy.title} {policy.doc_number} {policy.summary}".lower()


def parse_input_criteria(body: Mapping[str, Any], doc: str) -> list[crit.Criterion] | None:
    """Criteria from either `criteria` (expression trees) or `criteria_form` (the form)."""
    if body.get("criteria") is not None and body.get("criteria_form") is not None:
        raise crit.InvalidCriteria("criteria 与 criteria_form 只能提供一个", field="criteria")
    if body.get("criteria") is not None:
        return crit.parse_criteria(body["criteria"], default_doc=doc)
    if body.get("criteria_form") is not None:
        return crit.from_structured(body["criteria_form"], doc=doc)
    return None


def pays_money(policy: Policy) -> bool:
    """免申即享, a stated amount, or a subsidy or award: its criteria count only facts from an
    authority, never what the enterprise declared itself and nobody confirmed."""
    return (
        policy.delivery is Delivery.AUTOMATIC
        or policy.benefit_amount_yuan is not None
        or policy.benefit_kind in (BenefitKind.SUBSIDY, BenefitKind.AWARD)
    )


def _add_version(
    session: Session,
    policy: Policy,
    criteria: Sequence[crit.Criterion],
    *,
    staff_id: int | None,
    now: dt.datetime,
) -> list[crit.Criterion]:
    """Store `criteria` as the policy's next version; returns them as stored."""
    if pays_money(policy):
        criteria = crit.requiring_authoritative(criteria)
    policy.criteria_version += 1
    matching.note_written_criteria(session, policy.id, policy.criteria_version)
    session.add(
        PolicyCriteria(
            policy_id=policy.id,
            version=policy.criteria_version,
            criteria=[c.as_json() for c in criteria],
            created_by_staff_id=staff_id,
            created_at=now,
        )
    )
    return list(criteria)


def _check_delivery(policy: Policy) -> None:
    if policy.delivery is Delivery.APPLICATION and not policy.item_code:
        raise crit.InvalidCriteria("申请兑现的政策须填写事项编码", field="item_code")


def create_policy(
    session: Session,
    *,
    department_id: int,
    fields: Mapping[str, Any],
    criteria: Sequence[crit.Criterion] | None,
    staff_id: int | None,
    now: dt.datetime,
) -> Policy:
    """A draft policy with its first criteria version."""
    # An administrator is not scoped to departments, so nothing before this names a real one.
    if session.get(Department, department_id) is None:
        raise DepartmentNotFound(department_id=department_id)
    policy = Policy(
        department_id=department_id,
        status=PolicyStatus.DRAFT,
        criteria_version=0,
        created_by_staff_id=staff_id,
        updated_at=now,
        created_at=now,
        **{k: fields.get(k) for k in EDITABLE},
    )
    policy.benefit_kind = BenefitKind(fields["benefit_kind"])
    policy.delivery = Delivery(fields["delivery"])
    _check_delivery(policy)
    push_message.check_officer_text(policy)
    policy.search_text = _search_text(policy)
    session.add(policy)
    session.flush()
    if criteria is not None:
        _add_version(session, policy, criteria, staff_id=staff_id, now=now)
    record(
        session, "policy.created", actor=Actor("staff", staff_id), now=now,
        subject_type="policy", subject_id=policy.id,
    )  # fmt: skip
    session.flush()
    return policy


def department_policies(
    session: Session, department_id: int, *, status: str | None = None, limit: int = 500
) -> list[Policy]:
    """A department's policies, newest first."""
    query = select(Policy).where(Policy.department_id == department_id)
    if status is not None:
        query = query.where(Policy.status == status)
    return list(session.scalars(query.order_by(Policy.id.desc()).limit(limit)))


def get_policy(session: Session, policy_id: int) -> Policy:
    policy = session.get(Policy, policy_id)
    if policy is None:
        raise PolicyNotFound(policy_id=policy_id)
    return policy


def effective_status(policy: Policy, now: dt.datetime) -> PolicyStatus:
    """Published past its expiry date reads as expired even before the sweep marks it."""
    if (
        policy.status is PolicyStatus.PUBLISHED
        and policy.expires_on is not None
        and policy.expires_on < matching.today(now)
    ):
        return PolicyStatus.EXPIRED
    return PolicyStatus(policy.status)


def edit_policy(
    session: Session,
    policy: Policy,
    *,
    fields: Mapping[str, Any],
    criteria: Sequence[crit.Criterion] | None,
    staff_id: int | None,
    now: dt.datetime,
) -> Policy:
    """Edit a draft or published policy; new criteria become a new version (re-matched if live)."""
    status = effective_status(policy, now)
    if status not in (PolicyStatus.DRAFT, PolicyStatus.PUBLISHED):
        raise PolicyStateConflict(status=status.value)
    for key in EDITABLE:
        if key in fields:
            value = fields[key]
            if key == "benefit_kind":
                value = BenefitKind(value)
            elif key == "delivery":
                value = Delivery(value)
            setattr(policy, key, value)
    _check_delivery(policy)
    push_message.check_officer_text(policy)
    policy.search_text = _search_text(policy)
    policy.updated_at = now
    if criteria is None and policy.criteria_version and pays_money(policy):
        current = current_criteria(session, policy)
        if not all(c.authoritative for c in current):
            criteria = current  # it pays money now: the same criteria, authoritative facts only
    if criteria is not None:
        criteria = _add_version(session, policy, criteria, staff_id=staff_id, now=now)
    session.flush()
    if status is PolicyStatus.PUBLISHED and criteria is not None:
        matching.match_policy(session, policy.id, policy.criteria_version, criteria, now=now)
        push_schedule.create_pushes(session, policy.id, now=now)
    record(
        session, "policy.edited", actor=Actor("staff", staff_id), now=now,
        subject_type="policy", subject_id=policy.id,
        details={"criteria_version": policy.criteria_version},
    )  # fmt: skip
    return policy


def current_criteria(session: Session, policy: Policy) -> list[crit.Criterion]:
    return matching.criteria_of(session, policy.id, policy.criteria_version)


def preview(session: Session, policy: Policy) -> matching.Preview:
    """How many enterprises the current criteria reach, before publishing."""
    criteria = current_criteria(session, policy)
    if not criteria:
        raise PolicyHasNoCriteria()
    return matching.preview(session, criteria)


def publish(session: Session, policy: Policy, *, staff_id: int | None, now: dt.datetime) -> int:
    """Publish a draft: match every enterprise, queue the pushes; return the match count."""
    if policy.expires_on is not None and policy.expires_on < matching.today(now):
        raise PolicyExpired(expires_on=policy.expires_on.isoformat())
    if policy.status is not PolicyStatus.DRAFT:
        raise PolicyStateConflict(status=PolicyStatus(policy.status).value)
    # A draft stored before its text was checked at create and edit.
    push_message.check_officer_text(policy)
    criteria = current_criteria(session, policy)
    if not criteria:
        raise PolicyHasNoCriteria()
    policy.status = PolicyStatus.PUBLISHED
    policy.published_at = now
    policy.updated_at = now
    session.flush()
    count = matching.match_policy(session, policy.id, policy.criteria_version, criteria, now=now)
    push_schedule.create_pushes(session, policy.id, now=now)
    record(
        session, "policy.published", actor=Actor("staff", staff_id), now=now,
        subject_type="policy", subject_id=policy.id, details={"matched": count},
    )  # fmt: skip
    return count


def withdraw(
    session: Session, policy: Policy, *, reason: str, staff_id: int | None, now: dt.datetime
) -> Policy:
    """Withdraw a published policy; pushes not yet sent are cancelled."""
    if effective_status(policy, now) is not PolicyStatus.PUBLISHED:
        raise PolicyStateConflict(status=effective_status(policy, now).value)
    policy.status = PolicyStatus.WITHDRAWN
    policy.withdrawn_at = now
    policy.withdraw_reason = reason
    policy.updated_at = now
    push_schedule.cancel_pushes(session, policy.id, reason="POLICY_WITHDRAWN")
    record(
        session, "policy.withdrawn", actor=Actor("staff", staff_id), now=now,
        subject_type="policy", subject_id=policy.id,
    )  # fmt: skip
    session.flush()
    return policy


def expire_due(session: Session, *, now: dt.datetime) -> int:
    """Mark published policies past their expiry date as expired and cancel their pushes."""
    due = list(
        session.scalars(
            select(Policy).where(
                Policy.status == PolicyStatus.PUBLISHED, Policy.expires_on < matching.today(now)
            )
        )
    )
    for policy in due:
        policy.status = PolicyStatus.EXPIRED
        policy.updated_at = now
        push_schedule.cancel_pushes(session, policy.id, reason="POLICY_EXPIRED")
    session.flush()
    return len(due)


def reach(session: Session, policy_id: int) -> dict[str, int]:
    """Matched, pushed (handed to WeChat), delivered, read and applied, per enterprise."""
    matched = session.scalar(
        select(func.count()).select_from(PolicyMatch).where(PolicyMatch.policy_id == policy_id)
    )
    eligible = session.scalar(
        select(func.count())
        .select_from(PolicyMatch)
        .where(PolicyMatch.policy_id == policy_id, PolicyMatch.status == MatchStatus.ELIGIBLE)
    )
    by_status = dict(
        session.execute(
            select(PolicyPush.status, func.count(func.distinct(PolicyPush.enterprise_id)))
            .where(PolicyPush.policy_id == policy_id)
            .group_by(PolicyPush.status)
        ).all()
    )
    handed = (PushStatus.SENT, PushStatus.IN_DOUBT, PushStatus.IN_FLIGHT)
    read = session.scalar(
        select(func.count(func.distinct(FeedMark.enterprise_id))).where(
            FeedMark.policy_id == policy_id, FeedMark.read_at.is_not(None)
        )
    )
    applied = session.scalar(
        select(func.count())
        .select_from(PolicyMatch)
        .where(PolicyMatch.policy_id == policy_id, PolicyMatch.applied_at.is_not(None))
    )
    return {
        "matched": int(matched or 0),
        "eligible": int(eligible or 0),
        "pushed": sum(int(by_status.get(s, 0)) for s in handed),
        "delivered": int(by_status.get(PushStatus.SENT, 0)),
        "waiting": int(by_status.get(PushStatus.WAITING, 0)),
        "skipped": int(by_status.get(PushStatus.SKIPPED, 0)),
        "failed": int(by_status.get(PushStatus.FAILED, 0)),
        "in_doubt": int(by_status.get(PushStatus.IN_DOUBT, 0)),
        "read": int(read or 0),
        "applied": int(applied or 0),
    }


# -- reasons -----------------------------------------------------------------------------------


def reasons(
    criteria: Sequence[crit.Criterion],
    results: str,
    values: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per criterion: label, result (pass/fail/unknown) in Chinese, source clause, hint. With
    the profile's `values`, an unknown that only the enterprise's own unconfirmed declarations
    would decide is labelled 待核实 (to be verified)."""
    out = []
    for criterion, char in zip(criteria, results, strict=False):
        result = crit.Tri(char)
        pending = (
            result is crit.Tri.UNKNOWN
            and criterion.authoritative
            and values is not None
            and crit.evaluate(criterion.rule, {**values, "unverified_tag_bits": 0}) is not None
        )
        out.append(
            {
                "criterion": criterion.id,
                "label": criterion.label,
                "result": {"P": "pass", "F": "fail", "U": "unknown"}[char],
                "result_label": "待核实" if pending else result.label,
                "pending_verification": pending,
                "source": {"doc": criterion.doc, "article": criterion.article},
                "hint": criterion.hint if result is crit.Tri.FAIL else "",
            }
        )
    return out


def verdict(status: MatchStatus | None, delivery: Delivery) -> str:
    if status is MatchStatus.ELIGIBLE:
        return "符合条件，免申即享" if delivery is Delivery.AUTOMATIC else "符合条件，可申请兑现"
    if status is MatchStatus.MAYBE:
        return "可能符合，请补充信息后申请（快申快享）"
    return "暂不符合"


# -- the feed ----------------------------------------------------------------------------------


@dataclass
class FeedItem:
    policy: Policy
    match: PolicyMatch
    read: bool
    favourite: bool
    reasons: list[dict[str, Any]]
    verdict: str


def feed(
    session: Session,
    *,
    user_id: int,
    enterprise_id: int,
    now: dt.datetime,
    benefit_kind: str | None = None,
    keyword: str | None = None,
    unread_only: bool = False,
    favourites_only: bool = False,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[FeedItem], int, int]:
    """Policies matched to the enterprise, newest first; (page, total, unread)."""
    mark = and_(
        FeedMark.policy_id == PolicyMatch.policy_id,
        FeedMark.enterprise_id == PolicyMatch.enterprise_id,
        FeedMark.user_id == user_id,
    )
    base = (
        select(PolicyMatch, Policy, FeedMark)
        .join(Policy, Policy.id == PolicyMatch.policy_id)
        .outerjoin(FeedMark, mark)
        .where(PolicyMatch.enterprise_id == enterprise_id, matching.active_policy_filter(now))
    )
    unread_q = base.where(or_(FeedMark.id.is_(None), FeedMark.read_at.is_(None)))
    unread = session.scalar(select(func.count()).select_from(unread_q.subquery()))
    query = base
    if benefit_kind:
        query = query.where(Policy.benefit_kind == benefit_kind)
    for term in (keyword or "").lower().split()[:5]:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Policy.search_text.like(f"%{escaped}%", escape="\\"))
    if unread_only:
        query = query.where(or_(FeedMark.id.is_(None), FeedMark.read_at.is_(None)))
    if favourites_only:
        query = query.where(FeedMark.favourite.is_(True))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(
        query.order_by(Policy.published_at.desc(), Policy.id.desc()).offset(offset).limit(limit)
    ).all()
    profile = session.get(EnterpriseProfile, enterprise_id)
    values = matching.profile_values(profile) if profile is not None else None
    items = []
    for match, policy, feed_mark in rows:
        criteria = matching.criteria_of(session, policy.id, match.criteria_version)
        items.append(
            FeedItem(
                policy=policy,
                match=match,
                read=bool(feed_mark and feed_mark.read_at),
                favourite=bool(feed_mark and feed_mark.favourite),
                reasons=reasons(criteria, match.results, values),
                verdict=verdict(MatchStatus(match.status), Delivery(policy.delivery)),
            )
        )
    return items, int(total or 0), int(unread or 0)


def set_push_opt_out(
    session: Session, user_id: int, enterprise_id: int, *, opted_out: bool, now: dt.datetime
) -> None:
    """Stop (or resume) policy pushes to this user for this enterprise; the feed stays."""
    mine = and_(PushOptOut.user_id == user_id, PushOptOut.enterprise_id == enterprise_id)
    if not opted_out:
        session.execute(delete(PushOptOut).where(mine))
    elif session.scalar(select(PushOptOut.id).where(mine)) is None:
        session.add(PushOptOut(user_id=user_id, enterprise_id=enterprise_id, created_at=now))
    session.flush()


def _mark(session: Session, user_id: int, enterprise_id: int, policy_id: int) -> FeedMark:
    found = session.scalars(
        select(FeedMark).where(
            FeedMark.user_id == user_id,
            FeedMark.enterprise_id == enterprise_id,
            FeedMark.policy_id == policy_id,
        )
    ).first()
    if found is None:
        found = FeedMark(
            user_id=user_id, enterprise_id=enterprise_id, policy_id=policy_id, favourite=False
        )
        session.add(found)
    return found


def mark_feed(
    session: Session,
    *,
    user_id: int,
    enterprise_id: int,
    policy_id: int,
    read: bool | None,
    favourite: bool | None,
    now: dt.datetime,
) -> FeedMark:
    """Mark a matched policy read/unread or (un)favourite for this user."""
    if session.get(PolicyMatch, (policy_id, enterprise_id)) is None:
        raise PolicyNotFound(policy_id=policy_id)
    feed_mark = _mark(session, user_id, enterprise_id, policy_id)
    if read is not None:
        feed_mark.read_at = (feed_mark.read_at or now) if read else None
    if favourite is not None:
        feed_mark.favourite = favourite
    session.flush()
    return feed_mark


def explain(
    session: Session, policy: Policy, enterprise_id: int, *, now: dt.datetime
) -> dict[str, Any]:
    """Why this enterprise does (not) qualify, evaluated now on its profile."""
    profile = session.get(EnterpriseProfile, enterprise_id)
    criteria = current_criteria(session, policy)
    values = matching.profile_values(profile) if profile else {}
    results = crit.evaluate_all(criteria, values)
    string = crit.results_string(results)
    status = (
        None if "F" in string else (MatchStatus.MAYBE if "U" in string else MatchStatus.ELIGIBLE)
    )
    return {
        "status": status.value if status else "not_eligible",
        "verdict": verdict(status, Delivery(policy.delivery)),
        "reasons": reasons(criteria, string, values),
    }


def near_misses(
    session: Session, values: Mapping[str, Any], *, now: dt.datetime
) -> list[dict[str, Any]]:
    """Active policies failing exactly one criterion (all others pass), with that criterion."""
    out = []
    for evaluation in matching.evaluate_profile(session, values, now):
        miss = evaluation.near_miss
        if miss is None:
            continue
        policy = session.get(Policy, evaluation.policy_id)
        assert policy is not None
        out.append(
            {
                "policy_id": policy.id,
                "title": policy.title,
                "criterion": miss.criterion.id,
                "label": miss.criterion.label,
                "hint": miss.criterion.hint or f"若满足“{miss.criterion.label}”即可申报",
                "source": {"doc": miss.criterion.doc, "article": miss.criterion.article},
            }
        )
    return out


def calculate(session: Session, values: Mapping[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """政策计算器: evaluate every active policy on a typed-in profile; nothing is stored."""
    eligible: list[dict[str, Any]] = []
    maybe: list[dict[str, Any]] = []
    for evaluation in matching.evaluate_profile(session, values, now):
        status = evaluation.status
        if status is None:
            continue
        policy = session.get(Policy, evaluation.policy_id)
        assert policy is not None
        entry = {
            "policy_id": policy.id,
            "title": policy.title,
            "doc_number": policy.doc_number,
            "benefit_kind": policy.benefit_kind,
            "benefit_amount_yuan": policy.benefit_amount_yuan,
            "delivery": policy.delivery,
            "verdict": verdict(status, Delivery(policy.delivery)),
            "reasons": reasons(
                matching.criteria_of(session, policy.id, evaluation.version), evaluation.string
            ),
        }
        (eligible if status is MatchStatus.ELIGIBLE else maybe).append(entry)
    return {
        "eligible": eligible,
        "maybe": maybe,
        "near_misses": near_misses(session, values, now=now),
    }


# -- 免申即享 ----------------------------------------------------------------------------------


def beneficiaries_csv(session: Session, policy: Policy) -> str:
    """The 免申即享 beneficiary list of a policy as CSV (accounts masked)."""
    if policy.delivery is not Delivery.AUTOMATIC:
        raise NotAutomatic(policy_id=policy.id)
    rows = session.execute(
        select(RegistryEnterprise, EnterpriseProfile, ReceivingAccount)
        .join(PolicyMatch, PolicyMatch.enterprise_id == RegistryEnterprise.id)
        .outerjoin(EnterpriseProfile, EnterpriseProfile.enterprise_id == RegistryEnterprise.id)
        .outerjoin(ReceivingAccount, ReceivingAccount.enterprise_id == RegistryEnterprise.id)
        .where(PolicyMatch.policy_id == policy.id, PolicyMatch.status == MatchStatus.ELIGIBLE)
        .order_by(RegistryEnterprise.uscc)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "统一社会信用代码",
            "企业名称",
            "镇街",
            "企业规模",
            "开户银行",
            "账户名称",
            "银行账号",
            "账户已确认",
        ]
    )
    for enterprise, profile, account in rows:
        writer.writerow(
            [
                enterprise.uscc,
                _csv_safe(enterprise.name),
                profile.town if profile else "",
                profile.size_class if profile else "",
                _csv_safe(account.bank_name) if account else "",
                _csv_safe(account.account_name) if account else "",
                account.account_number_masked if account else "",
                _account_state(account),
            ]
        )
    return out.getvalue()


def _account_state(account: ReceivingAccount | None) -> str:
    # A frozen account receives nothing until the legal representative confirms it again.
    if account is None:
        return "否"
    return "否（已冻结，待法定代表人重新确认）" if account.is_frozen else "是"


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ would be a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value

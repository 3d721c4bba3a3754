"""Policy pushes: one row per (policy, recipient), created when an enterprise becomes eligible.

Why a push outbox of its own on top of `app.notify` (and not plain notification rows):
the push has scheduling rules the notification outbox does not know (per-enterprise caps of
one a day and three a week, quiet hours 21:00-08:00 Asia/Shanghai, opt-outs, the policy being
withdrawn meanwhile), and a stronger delivery promise. So a `PolicyPush` row waits until the
rules let it go. This module creates and cancels the rows and states the rules; `push_drain.py`
applies them while it claims, sends and records; `app.notify.send_rate` paces the sends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, literal, or_, select, update
from sqlalchemy.orm import Session

from app.calendar import LOCAL_TZ
from app.db import insert_on_conflict
from app.enterprises.models import BindingStatus, EnterpriseBinding
from app.notify.sql import any_of
from app.policies.models import MatchStatus, PolicyMatch, PolicyPush, PushOptOut, PushStatus

_PUSHES = cast(Table, PolicyPush.__table__)
# Why a waiting push was cancelled when its enterprise stopped qualifying for the policy (a
# match removed, or only "maybe" now); it waits again if the enterprise qualifies again.
NO_LONGER_ELIGIBLE = "NO_LONGER_ELIGIBLE"


@dataclass(frozen=True)
class PushSettings:
    per_day: int = 1
    per_week: int = 3
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(8, 0)
    # Pushes on the wire at once: at most this many are left in doubt when a worker dies.
    batch: int = 50
    # Pushes a drain claims and decides at once, then sends `batch` at a time: the claim's
    # statements cost about the same for 50 pushes as for 200.
    claim: int = 200
    lease_seconds: float = 60.0
    max_attempts: int = 5
    retry_base_seconds: float = 60.0
    send_rate_limit: int = 20
    send_rate_window_seconds: int = 1
    # Slots of each window the drain leaves to citizens' notifications (`left_to_notifications`).
    send_rate_reserved: int = 5
    redis_url: str = ""
    namespace: str = "yuhaoban"
    poll_seconds: float = 5.0
    connections: int = 8

    @property
    def claim_size(self) -> int:
        """Pushes a claim takes: never fewer than one batch."""
        return max(self.claim, self.batch)

    @property
    def left_to_notifications(self) -> int:
        """Slots of each send-rate window a drain never takes: a number called at a window
        must not wait behind a push to thousands. Never the whole window (the push would
        never go)."""
        return max(min(self.send_rate_reserved, self.send_rate_limit - 1), 0)

    @classmethod
    def from_config(cls, config: Any) -> PushSettings:
        """From a Flask config; every key optional."""

        def clock(text: str) -> dt.time:
            hours, minutes = text.split(":")
            return dt.time(int(hours), int(minutes))

        quiet = str(config.get("POLICY_PUSH_QUIET_HOURS") or "21:00-08:00")
        start, _, end = quiet.partition("-")
        return cls(
            per_day=int(config.get("POLICY_PUSH_PER_DAY", 1)),
            per_week=int(config.get("POLICY_PUSH_PER_WEEK", 3)),
            quiet_start=clock(start),
            quiet_end=clock(end),
            # At least one: a batch of none would never send (and cannot be stepped through).
            batch=max(int(config.get("POLICY_PUSH_BATCH", 50)), 1),
            claim=max(int(config.get("POLICY_PUSH_CLAIM", 200)), 1),
            lease_seconds=float(config.get("POLICY_PUSH_LEASE_SECONDS", 60)),
            max_attempts=int(config.get("POLICY_PUSH_MAX_ATTEMPTS", 5)),
            retry_base_seconds=float(config.get("POLICY_PUSH_RETRY_BASE_SECONDS", 60)),
            send_rate_limit=int(config.get("NOTIFY_SEND_RATE_LIMIT", 20)),
            send_rate_window_seconds=int(config.get("NOTIFY_SEND_RATE_WINDOW_SECONDS", 1)),
            send_rate_reserved=int(config.get("NOTIFY_SEND_RATE_RESERVED", 5)),
            redis_url=str(config.get("REDIS_URL") or ""),
            namespace=str(config.get("DRAMATIQ_NAMESPACE") or "yuhaoban"),
            poll_seconds=float(config.get("POLICY_PUSH_POLL_SECONDS", 5)),
            connections=int(config.get("POLICY_PUSH_CONNECTIONS", 8)),
        )


# -- creating pushes ---------------------------------------------------------------------------


def create_pushes(
    session: Session,
    policy_id: int | list[int],
    *,
    now: dt.datetime,
    enterprise_id: int | None = None,
) -> int:
    """One push per active recipient of every eligible enterprise (set-based, idempotent).

    Recipients are the enterprise's legal representative and agents with an active binding.
    An opted-out recipient gets a row marked SKIPPED (OPTED_OUT), so the officer sees why.
    A push cancelled because the enterprise stopped qualifying (NO_LONGER_ELIGIBLE) waits
    again: a push is unique per (policy, recipient), so no new one could take its place.
    """
    optout = (
        select(PushOptOut.id)
        .where(
            PushOptOut.user_id == EnterpriseBinding.user_id,
            PushOptOut.enterprise_id == PolicyMatch.enterprise_id,
        )
        .exists()
    )
    policy_ids = policy_id if isinstance(policy_id, list) else [policy_id]
    if not policy_ids:
        return 0
    where = [
        PolicyMatch.policy_id.in_(policy_ids),
        PolicyMatch.status == MatchStatus.ELIGIBLE,
    ]
    if enterprise_id is not None:
        where.append(PolicyMatch.enterprise_id == enterprise_id)
    source = (
        select(
            PolicyMatch.policy_id,
            PolicyMatch.enterprise_id,
            EnterpriseBinding.user_id,
            case((optout, literal(PushStatus.SKIPPED.value)), else_=literal("waiting")),
            case((optout, literal("OPTED_OUT")), else_=literal(None)),
            literal(now, type_=_PUSHES.c.due_at.type),
            literal(0),
            literal(0),
            literal(now, type_=_PUSHES.c.created_at.type),
        )
        .join(
            EnterpriseBinding,
            and_(
                EnterpriseBinding.enterprise_id == PolicyMatch.enterprise_id,
                EnterpriseBinding.status == BindingStatus.ACTIVE,
            ),
        )
        .where(*where)
    )
    dialect = session.get_bind().dialect.name
    insert = insert_on_conflict(dialect)(PolicyPush).from_select(
        [
            "policy_id",
            "enterprise_id",
            "user_id",
            "status",
            "reason",
            "due_at",
            "attempts",
            "claim_token",
            "created_at",
        ],
        source,
    )
    statement = insert.on_conflict_do_update(
        index_elements=["policy_id", "user_id"],
        set_={
            "status": insert.excluded.status,
            "reason": insert.excluded.reason,
            "due_at": insert.excluded.due_at,
        },
        where=and_(
            _PUSHES.c.status == PushStatus.CANCELLED.value,
            _PUSHES.c.reason == NO_LONGER_ELIGIBLE,
        ),
    )
    result = session.execute(statement)
    return max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]


def cancel_pushes(
    session: Session,
    policy_id: int | list[int],
    *,
    reason: str,
    enterprise_id: int | None = None,
    unless_eligible: bool = False,
) -> int:
    """Stop the pushes of a policy not yet claimed: every one (withdrawn or expired), those to
    one enterprise (`enterprise_id`), or those to enterprises whose match is gone or not
    eligible now (`unless_eligible`, set-based). Claimed ones are the drain's: it holds them
    under a lease and may be sending them."""
    policy_ids = policy_id if isinstance(policy_id, list) else [policy_id]
    if not policy_ids:
        return 0
    where = [PolicyPush.policy_id.in_(policy_ids), PolicyPush.status == PushStatus.WAITING]
    if enterprise_id is not None:
        where.append(PolicyPush.enterprise_id == enterprise_id)
    if unless_eligible:
        eligible = (
            select(PolicyMatch.enterprise_id)
            .where(
                PolicyMatch.policy_id == PolicyPush.policy_id,
                PolicyMatch.enterprise_id == PolicyPush.enterprise_id,
                PolicyMatch.status == MatchStatus.ELIGIBLE,
            )
            .exists()
        )
        where.append(~eligible)
    result = session.execute(
        update(PolicyPush)
        .where(*where)
        .values(status=PushStatus.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- scheduling rules --------------------------------------------------------------------------


def _local_day_start(now: dt.datetime, days: int = 0) -> dt.datetime:
    local = now.astimezone(LOCAL_TZ)
    start = dt.datetime.combine(local.date() + dt.timedelta(days=days), dt.time(), LOCAL_TZ)
    return start.astimezone(dt.UTC)


def quiet_until(now: dt.datetime, settings: PushSettings) -> dt.datetime | None:
    """The end of the quiet hours when `now` is inside them (Asia/Shanghai), else None."""
    local = now.astimezone(LOCAL_TZ)
    clock = local.time()
    start, end = settings.quiet_start, settings.quiet_end
    inside = (clock >= start or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() + dt.timedelta(days=1) if start > end and clock >= start else local.date()
    return dt.datetime.combine(day, end, LOCAL_TZ).astimezone(dt.UTC)


def released_by_enterprise(
    session: Session, enterprise_ids: list[int], policy_ids: list[int], now: dt.datetime
) -> dict[int, dict[int, dt.datetime]]:
    """Per enterprise, policy -> first release: over the caps' window, and ever for `policy_ids`."""
    week_start = _local_day_start(now, -6)
    released: dict[int, dict[int, dt.datetime]] = {}
    for enterprise_id, policy_id, first in session.execute(
        select(PolicyPush.enterprise_id, PolicyPush.policy_id, func.min(PolicyPush.released_at))
        .where(
            any_of(session, PolicyPush.enterprise_id, enterprise_ids),
            PolicyPush.released_at.is_not(None),
            or_(
                PolicyPush.released_at >= week_start,
                any_of(session, PolicyPush.policy_id, policy_ids),
            ),
        )
        .group_by(PolicyPush.enterprise_id, PolicyPush.policy_id)
    ):
        if first is not None:  # never: only released pushes are grouped
            released.setdefault(enterprise_id, {})[policy_id] = first
    return released


def cap_from(
    released: dict[int, dt.datetime], policy_id: int, now: dt.datetime, settings: PushSettings
) -> dt.datetime | None:
    if policy_id in released:
        return None  # another recipient of the same policy: the same push
    week_start = _local_day_start(now, -6)
    firsts = [first for pid, first in released.items() if first >= week_start]
    day_start = _local_day_start(now)
    if sum(1 for first in firsts if first >= day_start) >= settings.per_day:
        return _local_day_start(now, 1)
    if len(firsts) >= settings.per_week:
        return _local_day_start(min(firsts), 7)
    return None


def cap_until(
    session: Session, enterprise_id: int, policy_id: int, now: dt.datetime, settings: PushSettings
) -> dt.datetime | None:
    """When the enterprise may receive another policy, if its caps are reached now.

    Caps count distinct policies released to the enterprise per Shanghai calendar day and over
    the last seven calendar days; recipients of one policy count once.
    """
    released = released_by_enterprise(session, [enterprise_id], [policy_id], now).get(
        enterprise_id, {}
    )
    return cap_from(released, policy_id, now, settings)

"""The policy push outbox: one row per (policy, recipient), exactly once, politely scheduled.

Why a push outbox of its own on top of `app.notify` (and not plain notification rows):
the push has scheduling rules the notification outbox does not know (per-enterprise caps of
one a day and three a week, quiet hours 21:00-08:00 Asia/Shanghai, opt-outs, the policy being
withdrawn meanwhile), and a stronger delivery promise. So a `PolicyPush` row waits here until
the rules let it go; each attempt is then a `NotificationOutbox` row (dedupe key
`policy-push:<push id>:<attempt>`) delivered by `app.notify.sender.deliver` itself: its
subscription grants (never send without one; 43101 revokes), template ids, personal-data check,
lease fence and error handling are reused, not rewritten.

Exactly once. WeChat has no idempotency key, so a send whose outcome was lost cannot be told
apart from a send that never happened. The push therefore writes an in-flight marker (a
committed, claim-token-guarded UPDATE) immediately before the WeChat call, through a wrapper
around the WeChat client that `deliver` calls:

- killed before the marker: the row is provably unsent; after its lease it is claimed again;
- killed after WeChat accepted the message but before the commit: the row is IN_FLIGHT with an
  expired lease; recovery marks it IN_DOUBT and never sends it again;
- a timeout after the request left (`maybe_processed`): IN_DOUBT too.

So each (policy, recipient) gets at most one message, and exactly one unless a worker dies in
the few milliseconds between the marker and WeChat's answer; those rows are listed as IN_DOUBT
(the policy is in the enterprise's feed regardless). The notification row of an attempt is
claimed with a long lease in the transaction that creates it, so the general notification
workers never pick it up behind this module's back.

The global send rate is the one WeChat limit shared by every worker: Dramatiq's Redis
`WindowRateLimiter` on the same key as the notification workers when REDIS_URL is set, an
in-process token bucket otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.enterprises.models import BindingStatus, EnterpriseBinding
from app.notify import outbox as notify_outbox
from app.notify import sender as notify_sender
from app.notify.models import NotificationOutbox, OutboxStatus
from app.organisation.models import Department
from app.policies.matching import SHANGHAI, active_policy_filter
from app.policies.models import (
    EnterpriseProfile,
    MatchStatus,
    Policy,
    PolicyMatch,
    PolicyPush,
    PushOptOut,
    PushStatus,
)
from wechat.errors import QuotaExhausted, SubscriptionRefused, TransportError, WeChatError

log = logging.getLogger(__name__)

PUSH_JOB = "policy_push"
TEMPLATE_KEY = "policy_push"
# A notification row held by a push attempt is never claimable by the general workers.
HOLD = dt.timedelta(days=3650)


@dataclass(frozen=True)
class PushSettings:
    per_day: int = 1
    per_week: int = 3
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(8, 0)
    batch: int = 50
    lease_seconds: float = 60.0
    max_attempts: int = 5
    retry_base_seconds: float = 60.0
    send_rate_limit: int = 20
    send_rate_window_seconds: int = 1
    redis_url: str = ""
    namespace: str = "yuhaoban"
    poll_seconds: float = 5.0

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
            batch=int(config.get("POLICY_PUSH_BATCH", 50)),
            lease_seconds=float(config.get("POLICY_PUSH_LEASE_SECONDS", 60)),
            max_attempts=int(config.get("POLICY_PUSH_MAX_ATTEMPTS", 5)),
            retry_base_seconds=float(config.get("POLICY_PUSH_RETRY_BASE_SECONDS", 60)),
            send_rate_limit=int(config.get("NOTIFY_SEND_RATE_LIMIT", 20)),
            send_rate_window_seconds=int(config.get("NOTIFY_SEND_RATE_WINDOW_SECONDS", 1)),
            redis_url=str(config.get("REDIS_URL") or ""),
            namespace=str(config.get("DRAMATIQ_NAMESPACE") or "yuhaoban"),
            poll_seconds=float(config.get("POLICY_PUSH_POLL_SECONDS", 5)),
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
            literal(now, type_=PolicyPush.__table__.c.due_at.type),
            literal(0),
            literal(0),
            literal(now, type_=PolicyPush.__table__.c.created_at.type),
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
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(PolicyPush)
        .from_select(
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
        .on_conflict_do_nothing(index_elements=["policy_id", "user_id"])
    )
    result = session.execute(statement)
    return max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]


def cancel_pushes(session: Session, policy_id: int, *, reason: str) -> int:
    """Stop every push of a policy not yet handed to WeChat (withdrawn or expired)."""
    result = session.execute(
        update(PolicyPush)
        .where(PolicyPush.policy_id == policy_id, PolicyPush.status == PushStatus.WAITING)
        .values(status=PushStatus.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- scheduling rules --------------------------------------------------------------------------


def _local_day_start(now: dt.datetime, days: int = 0) -> dt.datetime:
    local = now.astimezone(SHANGHAI)
    start = dt.datetime.combine(local.date() + dt.timedelta(days=days), dt.time(), SHANGHAI)
    return start.astimezone(dt.UTC)


def quiet_until(now: dt.datetime, settings: PushSettings) -> dt.datetime | None:
    """The end of the quiet hours when `now` is inside them (Asia/Shanghai), else None."""
    local = now.astimezone(SHANGHAI)
    clock = local.time()
    start, end = settings.quiet_start, settings.quiet_end
    inside = (clock >= start or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() + dt.timedelta(days=1) if start > end and clock >= start else local.date()
    return dt.datetime.combine(day, end, SHANGHAI).astimezone(dt.UTC)


def cap_until(
    session: Session, enterprise_id: int, policy_id: int, now: dt.datetime, settings: PushSettings
) -> dt.datetime | None:
    """When the enterprise may receive another policy, if its caps are reached now.

    Caps count distinct policies released to the enterprise per Shanghai calendar day and over
    the last seven calendar days; recipients of one policy count once.
    """
    week_start = _local_day_start(now, -6)
    firsts = list(
        session.scalars(
            select(func.min(PolicyPush.released_at))
            .where(
                PolicyPush.enterprise_id == enterprise_id,
                PolicyPush.released_at >= week_start,
                PolicyPush.policy_id != policy_id,
            )
            .group_by(PolicyPush.policy_id)
        )
    )
    already = session.scalar(
        select(func.count())
        .select_from(PolicyPush)
        .where(
            PolicyPush.enterprise_id == enterprise_id,
            PolicyPush.policy_id == policy_id,
            PolicyPush.released_at.is_not(None),
        )
    )
    if already:
        return None  # another recipient of the same policy: the same push
    day_start = _local_day_start(now)
    if sum(1 for first in firsts if first >= day_start) >= settings.per_day:
        return _local_day_start(now, 1)
    if len(firsts) >= settings.per_week:
        oldest = min(firsts)
        return _local_day_start(oldest, 7)
    return None


# -- claiming ----------------------------------------------------------------------------------


def _policy_message(policy: Policy, department: str, now: dt.datetime) -> dict[str, str]:
    deadline = policy.expires_on or dt.date(now.astimezone(SHANGHAI).year, 12, 31)
    return {
        "thing1": policy.title[:20],
        "thing2": department[:20],
        "date3": deadline.isoformat(),
        "thing4": (policy.summary or policy.title)[:20],
    }


def claim_batch(
    session: Session, *, now: dt.datetime, settings: PushSettings, limit: int
) -> list[PolicyPush]:
    """Take due pushes, apply the rules, and lease the ones that may go now.

    Each leased push gets its attempt's notification row, itself claimed in this transaction
    (long lease), so no general worker can send it. Commit right after.
    """
    ids = list(
        session.scalars(
            select(PolicyPush.id)
            .where(PolicyPush.status == PushStatus.WAITING, PolicyPush.due_at <= now)
            .order_by(PolicyPush.due_at, PolicyPush.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    pushes = list(
        session.scalars(
            select(PolicyPush)
            .where(PolicyPush.id.in_(ids))
            .order_by(PolicyPush.enterprise_id, PolicyPush.id)
            .execution_options(populate_existing=True)
        )
    )
    # Serialise the caps per enterprise: two workers never both release its daily push.
    enterprise_ids = sorted({p.enterprise_id for p in pushes})
    session.execute(
        select(EnterpriseProfile.enterprise_id)
        .where(EnterpriseProfile.enterprise_id.in_(enterprise_ids))
        .order_by(EnterpriseProfile.enterprise_id)
        .with_for_update()
    ).all()
    if session.get_bind().dialect.name == "postgresql":
        # Losing this commit to a database crash only means claiming again: no need to wait
        # for its fsync. (The in-flight marker, which guards the send, keeps full durability.)
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    user_ids = sorted({p.user_id for p in pushes})
    opted_out: set[tuple[int, int]] = {
        (row[0], row[1])
        for row in session.execute(
            select(PushOptOut.user_id, PushOptOut.enterprise_id).where(
                PushOptOut.user_id.in_(user_ids), PushOptOut.enterprise_id.in_(enterprise_ids)
            )
        )
    }
    recipients: set[tuple[int, int]] = {
        (row[0], row[1])
        for row in session.execute(
            select(EnterpriseBinding.user_id, EnterpriseBinding.enterprise_id).where(
                EnterpriseBinding.user_id.in_(user_ids),
                EnterpriseBinding.enterprise_id.in_(enterprise_ids),
                EnterpriseBinding.status == BindingStatus.ACTIVE,
            )
        )
    }
    quiet = quiet_until(now, settings)
    policies: dict[int, tuple[Policy, str, bool]] = {}
    claimed: list[PolicyPush] = []
    for push in pushes:
        if push.policy_id not in policies:
            policy = session.get(Policy, push.policy_id)
            assert policy is not None
            active = bool(
                session.scalar(
                    select(Policy.id).where(Policy.id == policy.id, active_policy_filter(now))
                )
            )
            department = session.get(Department, policy.department_id)
            policies[push.policy_id] = (policy, department.name if department else "", active)
        policy, department_name, active = policies[push.policy_id]
        if not active:
            push.status, push.reason = PushStatus.CANCELLED, "POLICY_INACTIVE"
            continue
        if (push.user_id, push.enterprise_id) in opted_out:
            push.status, push.reason = PushStatus.SKIPPED, "OPTED_OUT"
            continue
        if (push.user_id, push.enterprise_id) not in recipients:
            push.status, push.reason = PushStatus.SKIPPED, "NOT_A_RECIPIENT"
            continue
        if quiet is not None:
            push.due_at, push.reason = quiet, "QUIET_HOURS"
            continue
        until = cap_until(session, push.enterprise_id, push.policy_id, now, settings)
        if until is not None:
            push.due_at, push.reason = quiet_until(until, settings) or until, "FREQUENCY_CAP"
            continue
        _lease(session, push, policy, department_name, now=now, settings=settings)
        claimed.append(push)
    session.flush()
    return claimed


def _lease(
    session: Session,
    push: PolicyPush,
    policy: Policy,
    department: str,
    *,
    now: dt.datetime,
    settings: PushSettings,
) -> None:
    attempt = push.attempts + 1
    row = notify_outbox.enqueue(
        session,
        user_id=push.user_id,
        template_key=TEMPLATE_KEY,
        data=_policy_message(policy, department, now),
        page=f"pages/policy/detail?id={policy.id}&enterprise={push.enterprise_id}",
        dedupe_key=f"policy-push:{push.id}:{attempt}",
        source=("policy_push", push.id),
        now=now,
    )
    if row is None:  # this attempt's row exists already (a crashed claim): take it again
        row = notify_outbox.find_by_dedupe_key(session, f"policy-push:{push.id}:{attempt}")
        assert row is not None
    held = notify_outbox.claim_one(session, row.id, now=now, lease_seconds=HOLD.total_seconds())
    push.notification_id = row.id if held is not None else None
    push.status = PushStatus.CLAIMED
    push.attempts = attempt
    push.claim_token += 1
    push.locked_until = now + dt.timedelta(seconds=settings.lease_seconds)
    push.released_at = push.released_at or now
    push.reason = None


# -- delivery ----------------------------------------------------------------------------------


class PushInDoubt(WeChatError):
    """The WeChat call may have been processed; this push is never sent again."""


class PushFenceLost(WeChatError):
    """Another worker owns this push now; nothing was sent."""


def _push_update(push: PolicyPush, **values: Any) -> Any:
    return (
        update(PolicyPush)
        .where(PolicyPush.id == push.id, PolicyPush.claim_token == push.claim_token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


class _GuardedSender:
    """The WeChat client as `notify.sender.deliver` sees it, with the push's in-flight marker."""

    def __init__(
        self,
        session: Session,
        wechat: notify_sender.SubscribeMessageSender,
        push: PolicyPush,
        *,
        now_fn: Callable[[], dt.datetime],
        settings: PushSettings,
    ) -> None:
        self.session, self.wechat, self.push = session, wechat, push
        self.now_fn, self.settings = now_fn, settings
        self.called = False
        self.outcome: PushStatus | None = None

    def send_subscribe_message(
        self, touser: str, template_id: str, data: dict[str, str], page: str | None = None
    ) -> None:
        self.called = True
        now = self.now_fn()
        marked = self.session.execute(
            _push_update(
                self.push,
                status=PushStatus.IN_FLIGHT,
                in_flight_at=now,
                locked_until=now + dt.timedelta(seconds=self.settings.lease_seconds),
            ).where(PolicyPush.status == PushStatus.CLAIMED)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            raise PushFenceLost(None, "push claimed by another worker")
        # The marker is durable before the request leaves: a crash now means "in doubt".
        self.session.commit()
        self._on_send()
        try:
            self.wechat.send_subscribe_message(touser, template_id, data, page=page)
        except TransportError as error:
            if error.maybe_processed:
                self._finish(PushStatus.IN_DOUBT, "MAYBE_PROCESSED")
                raise PushInDoubt(None, "the request may have reached WeChat") from error
            self._retry_or_fail(error, now)
            raise
        except SubscriptionRefused as error:
            self._finish(PushStatus.SKIPPED, str(error.errcode))
            raise
        except WeChatError as error:
            self._retry_or_fail(error, now)
            raise
        self._finish(PushStatus.SENT, None, sent_at=self.now_fn())

    def _on_send(self) -> None:
        """Hook for tests: the moment between the marker's commit and the WeChat call."""

    def _finish(self, status: PushStatus, reason: str | None, **values: Any) -> None:
        # Joins deliver()'s own commit of the notification row's outcome.
        self.outcome = status
        self.session.execute(
            _push_update(self.push, status=status, reason=reason, locked_until=None, **values)
        )

    def _retry_or_fail(self, error: WeChatError, now: dt.datetime) -> None:
        code = str(error.errcode) if error.errcode is not None else type(error).__name__
        if (error.transient or isinstance(error, QuotaExhausted)) and (
            self.push.attempts < self.settings.max_attempts
        ):
            delay = (
                3600.0
                if isinstance(error, QuotaExhausted)
                else self.settings.retry_base_seconds * 2 ** (self.push.attempts - 1)
            )
            self._finish(PushStatus.WAITING, code, due_at=now + dt.timedelta(seconds=delay))
        else:
            self._finish(PushStatus.FAILED, code)


# deliver() with one attempt per notification row: retries are this module's (new rows).
_ONE_ATTEMPT = notify_sender.RetryPolicy(max_attempts=1, lease_seconds=HOLD.total_seconds())


def deliver_push(
    session: Session,
    wechat: notify_sender.SubscribeMessageSender,
    push: PolicyPush,
    *,
    now_fn: Callable[[], dt.datetime],
    settings: PushSettings,
    sender_class: type[_GuardedSender] = _GuardedSender,
) -> PushStatus | None:
    """Deliver one claimed push through `notify.sender.deliver`; commits. None: lost."""
    row = session.get(NotificationOutbox, push.notification_id) if push.notification_id else None
    if row is None:
        session.execute(_push_update(push, status=PushStatus.WAITING, reason="NO_NOTIFICATION"))
        session.commit()
        return PushStatus.WAITING
    guarded = sender_class(session, wechat, push, now_fn=now_fn, settings=settings)
    outcome = notify_sender.deliver(session, guarded, row, now=now_fn(), policy=_ONE_ATTEMPT)
    if guarded.called:
        return guarded.outcome
    # deliver() decided without calling WeChat: no authorisation, user gone, lease lost.
    if outcome is notify_sender.Outcome.LOST:
        return None
    status = PushStatus.SKIPPED if outcome is notify_sender.Outcome.SKIPPED else PushStatus.FAILED
    session.execute(
        _push_update(push, status=status, reason=row.last_error_code, locked_until=None)
    )
    session.commit()
    return status


def recover(session: Session, *, now: dt.datetime) -> dict[str, int]:
    """Settle pushes whose worker died: unsent ones go back, in-flight ones become IN_DOUBT."""
    counts = {"requeued": 0, "in_doubt": 0}
    stuck = list(
        session.scalars(
            select(PolicyPush)
            .where(
                PolicyPush.status.in_([PushStatus.CLAIMED, PushStatus.IN_FLIGHT]),
                PolicyPush.locked_until < now,
            )
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    )
    for push in stuck:
        row = (
            session.get(NotificationOutbox, push.notification_id) if push.notification_id else None
        )
        if push.status is PushStatus.CLAIMED:
            # The marker never committed: WeChat was not called. Close the attempt's row.
            if row is not None and row.status is OutboxStatus.SENDING:
                if row.grant_reserved:
                    notify_outbox.return_grant(session, row.user_id, row.template_id)
                    row.grant_reserved = False
                row.finish(OutboxStatus.FAILED, "WORKER_LOST")
            push.status, push.reason, push.due_at = PushStatus.WAITING, "WORKER_LOST", now
            push.locked_until = None
            counts["requeued"] += 1
        else:
            if row is not None and row.status is OutboxStatus.SENT:
                push.status, push.sent_at = PushStatus.SENT, row.sent_at
            else:
                if row is not None and row.status is OutboxStatus.SENDING:
                    row.finish(OutboxStatus.FAILED, "IN_DOUBT")
                push.status, push.reason = PushStatus.IN_DOUBT, "WORKER_DIED_DURING_SEND"
                counts["in_doubt"] += 1
            push.locked_until = None
    session.flush()
    return counts


# -- the global send rate ----------------------------------------------------------------------


class TokenBucket:
    """An in-process token bucket shared by the threads of one process."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def make_gate(settings: PushSettings) -> Callable[[], bool]:
    """One send slot per call: Redis-wide with REDIS_URL (shared with notify), else per process."""
    rate = settings.send_rate_limit / settings.send_rate_window_seconds
    if not settings.redis_url:
        return TokenBucket(rate)
    from dramatiq.rate_limits import WindowRateLimiter
    from dramatiq.rate_limits.backends import RedisBackend
    from redis import Redis

    limiter = WindowRateLimiter(
        RedisBackend(client=Redis.from_url(settings.redis_url)),
        f"{settings.namespace}:wechat-send-rate",
        limit=settings.send_rate_limit,
        window=settings.send_rate_window_seconds,
    )

    def gate() -> bool:
        with limiter.acquire(raise_on_failure=False) as acquired:
            return bool(acquired)

    return gate


# -- the worker loop ---------------------------------------------------------------------------


@dataclass
class DrainStats:
    claimed: int = 0
    outcomes: dict[str, int] | None = None

    def count(self, status: PushStatus | None) -> None:
        self.outcomes = self.outcomes or {}
        key = status.value if status else "lost"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


def drain_once(
    session_factory: sessionmaker[Session],
    wechat: notify_sender.SubscribeMessageSender,
    *,
    now_fn: Callable[[], dt.datetime],
    settings: PushSettings,
    gate: Callable[[], bool] | None = None,
    sender_class: type[_GuardedSender] = _GuardedSender,
) -> DrainStats:
    """Recover stuck pushes, claim one batch, deliver each under the global send rate."""
    stats = DrainStats()
    with session_factory() as session:
        recover(session, now=now_fn())
        session.commit()
        pushes = claim_batch(session, now=now_fn(), settings=settings, limit=settings.batch)
        session.commit()
        stats.claimed = len(pushes)
        for push in pushes:
            while gate is not None and not gate():
                time.sleep(0.005)  # the shared rate is used up: wait for the next slot
            try:
                stats.count(
                    deliver_push(
                        session,
                        wechat,
                        push,
                        now_fn=now_fn,
                        settings=settings,
                        sender_class=sender_class,
                    )
                )
            except StaleDataError:
                session.rollback()
                stats.count(None)
            except Exception:
                # The push keeps its lease; recovery settles it when the lease runs out.
                session.rollback()
                log.exception("delivering a policy push failed", extra={"push_id": push.id})
                stats.count(None)
    return stats

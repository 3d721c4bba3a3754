"""Draining policy pushes: claim the due ones, send them, record the answers, exactly once.

A `PolicyPush` row (see `push_schedule.py`) waits until its rules let it go; each attempt is
then a `NotificationOutbox` row (dedupe key `policy-push:<push id>:<attempt>`) checked and
recorded by `app.notify` itself (`sender.enqueue_claimed`, `outbox.reserve_grants`,
`sender.record`): its subscription grants (never send without one; 43101 revokes), template
ids, personal-data check, user check and error handling are reused, not rewritten. What the
ORM would load and write one object at a time is read and written for the whole batch in one
Core statement instead: the claimed pushes and their decisions, the attempts' rows (inserted
already claimed), and `mark_sent` of the accepted sends.

Claims and batches. A worker claims up to `POLICY_PUSH_CLAIM` pushes at once, in about
twenty statements whatever their number, and sends them `POLICY_PUSH_BATCH` at a time, two
commits per batch:

1. claim (FOR UPDATE SKIP LOCKED), apply the rules, create and hold the attempts' notification
   rows, reserve the authorisations, and mark the pushes that go CLAIMED under a lease;
2. per batch of them: mark it IN_FLIGHT (`take_off`) and commit, immediately before its first
   request leaves (the first batch's commit is the claim's too);
3. send the batch concurrently (`POLICY_PUSH_CONNECTIONS` requests at a time from one thread,
   `WeChatClient.send_subscribe_messages`, from a child process by default; the global send
   rate was taken before the claim, so the batch never waits for it while IN_FLIGHT);
4. record every answer (notification rows and pushes): ONE commit.

The claim's statements cost about as much for 200 pushes as for 50: claimed four batches at
a time, the worker spends about 45 % less CPU per push and PostgreSQL about half, while the
pushes a dying worker leaves in doubt are still only those of the batches it had committed
IN_FLIGHT (below).

Exactly once. WeChat has no idempotency key, so a send whose outcome was lost cannot be told
apart from a send that never happened. Hence the committed IN_FLIGHT marker:

- killed before a batch's in-flight commit: none of it was sent. Not yet committed (the first
  batch), it is claimed again; committed CLAIMED (the later ones), recovery puts it back
  when the lease runs out, closing the attempts' rows and giving their authorisations back;
- killed between a batch's in-flight commit and its outcome's: its pushes are IN_FLIGHT with
  a lease that runs out; recovery marks them IN_DOUBT (or SENT when the notification row
  says so) and never sends them again, whether or not their request had left;
- a timeout after the request left (`maybe_processed`), or any unexpected error of the send:
  IN_DOUBT too.

So each (policy, recipient) gets at most one message, and exactly one unless a worker dies
while its batches are between their in-flight and outcome commits (then listed as IN_DOUBT;
the policy is in the enterprise's feed regardless). Each drain loop holds one batch there at
a time, so that is at most `ACTOR_LOOPS` x `POLICY_PUSH_BATCH` pushes (150 by default); in
practice the batch on the wire and the one handed over behind it (`drain_once`). The outcome
UPDATE of each push is guarded by its claim token and IN_FLIGHT status. The notification row
of an attempt is claimed with a long hold in the transaction that creates it, so the general
notification workers never pick it up behind this module's back.

The global send rate, shared with the notification workers, is taken before the claim and
what the claim did not use is given back (`app.notify.send_rate`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, fields
from typing import Any, Protocol, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from app.db import built_once
from app.enterprises.models import BindingStatus, EnterpriseBinding
from app.notify import outbox as notify_outbox
from app.notify import sender as notify_sender
from app.notify.models import NotificationOutbox, OutboxStatus
from app.notify.outbox import GrantUse
from app.notify.send_rate import give_back, take_slots
from app.notify.sender import Outcome
from app.notify.sql import RowSource, any_of, pairs_in
from app.notify.templates import TemplateCatalog
from app.organisation.models import Department
from app.policies import push_message
from app.policies.matching import active_policy_filter
from app.policies.models import EnterpriseProfile, Policy, PolicyPush, PushOptOut, PushStatus
from app.policies.push_schedule import PushSettings, cap_from, quiet_until, released_by_enterprise
from wechat.client import SubscribeMessage
from wechat.errors import QuotaExhausted, SubscriptionRefused, TransportError, WeChatError

log = logging.getLogger(__name__)

TEMPLATE_KEY = push_message.TEMPLATE_KEY
# A notification row held by a push attempt is never claimable by the general workers.
HOLD = dt.timedelta(days=3650)
# The tables, for the batch statements below (one per batch on PostgreSQL, `RowSource`).
_PUSHES = cast(Table, PolicyPush.__table__)
_OUTBOX = cast(Table, NotificationOutbox.__table__)


# -- claiming and marking -------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """One claimed push to send (`take_off` marks it IN_FLIGHT): what the sender needs."""

    push_id: int
    claim_token: int
    attempts: int
    notification_id: int
    # The attempt row's claim token: its outcome UPDATE is guarded by it, as the ORM would.
    notification_token: int
    openid: str
    template_id: str
    data: dict[str, str]
    page: str | None


@dataclass
class _Push:
    """A claimed push, as read and then decided (written back whole, one executemany)."""

    id: int
    policy_id: int
    enterprise_id: int
    user_id: int
    status: PushStatus
    due_at: dt.datetime
    attempts: int
    claim_token: int
    locked_until: dt.datetime | None
    notification_id: int | None
    reason: str | None
    released_at: dt.datetime | None
    in_flight_at: dt.datetime | None


_DECISION = (
    *("status", "due_at", "attempts", "claim_token", "locked_until", "notification_id"),
    *("reason", "released_at", "in_flight_at"),
)


@built_once
def _decide_statement(dialect: str) -> tuple[Any, RowSource]:
    """A claimed push's decision, written back for the whole batch in one statement (on
    PostgreSQL; one executemany elsewhere). The ORM loaded each push as an object and flushed it
    in its unit of work: about a third of a batch's database CPU."""
    rows = RowSource(
        dialect,
        {"d_id": _PUSHES.c.id.type, **{f"d_{name}": _PUSHES.c[name].type for name in _DECISION}},
    )
    statement = (
        update(_PUSHES)
        .where(_PUSHES.c.id == rows["d_id"])
        .values({name: rows[f"d_{name}"] for name in _DECISION})
    )
    return statement, rows


def claim_batch(
    session: Session,
    *,
    now: dt.datetime,
    settings: PushSettings,
    limit: int,
    catalog: TemplateCatalog,
) -> tuple[int, list[Send]]:
    """Take up to `limit` due pushes, apply the rules, and mark the ones that go CLAIMED.

    Never commits: the caller takes the first batch off (`take_off`) and commits right before
    sending it, so that one commit is the claim and that batch's in-flight marker. Returns
    (pushes looked at, pushes to send).
    Each push that goes gets its attempt's notification row, inserted already claimed with a
    long hold so no general notification worker ever sends it, and checked by
    `notify.sender.enqueue_claimed` (user, authorisation); the pushes it refuses are closed
    with its reason. A policy whose message notify's personal-data check would refuse fails
    its pushes here (PERSONAL_DATA_IN_MESSAGE), before any row: raised, it undid the claim
    of every other push in the batch, and the next claim took the same pushes first.
    """
    # One statement claims and loads: a plain SELECT ... LIMIT FOR UPDATE SKIP LOCKED (no
    # subquery that PostgreSQL could run twice), sorted by enterprise afterwards.
    pushes = sorted(
        (
            _Push(*cast(tuple[Any, ...], row))
            for row in session.execute(
                select(*(_PUSHES.c[field.name] for field in fields(_Push)))
                .where(
                    _PUSHES.c.status == PushStatus.WAITING.value,
                    _PUSHES.c.due_at <= now,
                )
                .order_by(_PUSHES.c.due_at, _PUSHES.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ),
        key=lambda push: (push.enterprise_id, push.id),
    )
    if not pushes:
        return 0, []
    # Serialise the caps per enterprise: two workers never both release its daily push.
    enterprise_ids = sorted({p.enterprise_id for p in pushes})
    session.execute(
        select(EnterpriseProfile.enterprise_id)
        .where(any_of(session, EnterpriseProfile.enterprise_id, enterprise_ids))
        .order_by(EnterpriseProfile.enterprise_id)
        .with_for_update()
    ).all()
    user_ids = sorted({p.user_id for p in pushes})
    policy_ids = sorted({p.policy_id for p in pushes})
    opted_out: set[tuple[int, int]] = {
        (row[0], row[1])
        for row in session.execute(
            select(PushOptOut.user_id, PushOptOut.enterprise_id).where(
                any_of(session, PushOptOut.user_id, user_ids),
                any_of(session, PushOptOut.enterprise_id, enterprise_ids),
            )
        )
    }
    recipients: set[tuple[int, int]] = {
        (row[0], row[1])
        for row in session.execute(
            select(EnterpriseBinding.user_id, EnterpriseBinding.enterprise_id).where(
                any_of(session, EnterpriseBinding.user_id, user_ids),
                any_of(session, EnterpriseBinding.enterprise_id, enterprise_ids),
                EnterpriseBinding.status == BindingStatus.ACTIVE,
            )
        )
    }
    # Each policy's message, built and checked once for all its recipients in the batch.
    messages: dict[int, dict[str, str]] = {}
    active: set[int] = set()
    refused: set[int] = set()
    for policy, department, is_active in session.execute(
        select(Policy, Department.name, active_policy_filter(now))
        .outerjoin(Department, Department.id == Policy.department_id)
        .where(any_of(session, Policy.id, policy_ids))
    ):
        messages[policy.id] = push_message.policy_message(policy, department or "")
        if is_active:
            active.add(policy.id)
            if push_message.refused(messages[policy.id]):
                refused.add(policy.id)
    caps = released_by_enterprise(session, enterprise_ids, policy_ids, now)
    quiet = quiet_until(now, settings)
    going: list[_Push] = []
    for push in pushes:
        if push.policy_id not in active:
            push.status, push.reason = PushStatus.CANCELLED, "POLICY_INACTIVE"
            continue
        if (push.user_id, push.enterprise_id) in opted_out:
            push.status, push.reason = PushStatus.SKIPPED, "OPTED_OUT"
            continue
        if (push.user_id, push.enterprise_id) not in recipients:
            push.status, push.reason = PushStatus.SKIPPED, "NOT_A_RECIPIENT"
            continue
        if push.policy_id in refused:
            # Notify would refuse the message (it raises, and the whole claim with it): failed
            # alone, never released against the enterprise's caps. A policy stored before its
            # text was checked (`push_message.check_officer_text`), or a department's name.
            push.status, push.reason = PushStatus.FAILED, push_message.REFUSED
            continue
        if quiet is not None:
            push.due_at, push.reason = quiet, "QUIET_HOURS"
            continue
        released = caps.setdefault(push.enterprise_id, {})
        until = cap_from(released, push.policy_id, now, settings)
        if until is not None:
            push.due_at, push.reason = quiet_until(until, settings) or until, "FREQUENCY_CAP"
            continue
        # Later pushes of this batch see the release (other recipients of it pass freely).
        released.setdefault(push.policy_id, now)
        going.append(push)
    if refused:  # the policy, never the message: no personal data in the logs
        log.warning("policy push refused by notify", extra={"policy_ids": sorted(refused)})
    sends = _mark_claimed(session, going, messages, now=now, settings=settings, catalog=catalog)
    decide, rows = _decide_statement(session.get_bind().dialect.name)
    session.execute(
        decide,
        rows.params(
            [
                {"d_id": push.id} | {f"d_{name}": _bound(getattr(push, name)) for name in _DECISION}
                for push in pushes
            ]
        ),
    )
    return len(pushes), sends


def _bound(value: Any) -> Any:
    return value.value if isinstance(value, PushStatus) else value


def _mark_claimed(
    session: Session,
    going: list[_Push],
    messages: dict[int, dict[str, str]],
    *,
    now: dt.datetime,
    settings: PushSettings,
    catalog: TemplateCatalog,
) -> list[Send]:
    """Create each push's claimed notification row (notify checks it), mark the push CLAIMED
    under a lease and a new claim token (`take_off` marks it IN_FLIGHT when its turn comes)."""
    if not going:
        return []
    items = [
        {
            "user_id": push.user_id,
            "template_key": TEMPLATE_KEY,
            "data": messages[push.policy_id],
            "page": f"pages/policy/detail?id={push.policy_id}&enterprise={push.enterprise_id}",
            "dedupe_key": _dedupe_key(push),
            "source": ("policy_push", push.id),
        }
        for push in going
    ]
    attempts = {
        key: _Attempt(**vars(claimed))
        for key, claimed in notify_sender.enqueue_claimed(
            session, items, now=now, lease_seconds=HOLD.total_seconds(), catalog=catalog
        ).items()
    }
    taken = [item for item in items if item["dedupe_key"] not in attempts]
    if taken:  # a row from an earlier attempt under the same key (should not happen)
        attempts.update(_claim_existing(session, taken, now=now, catalog=catalog))
    sends: list[Send] = []
    for push in going:
        attempt = attempts.get(_dedupe_key(push))
        push.attempts += 1
        push.locked_until = None
        if attempt is None:
            # The attempt's row is not ours to send (should not happen): try again later.
            push.due_at = now + dt.timedelta(seconds=settings.lease_seconds)
            push.reason = "NO_NOTIFICATION"
            continue
        push.notification_id = attempt.id
        if attempt.openid is None:  # decided by notify without a send
            push.status, push.reason = attempt.status, attempt.code
            continue
        push.status, push.reason = PushStatus.CLAIMED, None
        push.claim_token += 1
        # Released from here: a claimed push counts against its enterprise's caps, as it
        # will once sent, so no other worker releases another policy to it meanwhile.
        push.released_at = push.released_at or now
        push.locked_until = now + dt.timedelta(seconds=settings.lease_seconds)
        sends.append(
            Send(
                push_id=push.id,
                claim_token=push.claim_token,
                attempts=push.attempts,
                notification_id=attempt.id,
                notification_token=attempt.claim_token,
                openid=attempt.openid,
                template_id=attempt.template_id,
                data=attempt.data,
                page=attempt.page,
            )
        )
    return sends


@dataclass(frozen=True)
class _Attempt(notify_sender.Claimed):
    """A push attempt's notification row, claimed: to send (`openid`) or decided by notify,
    with the push's status when decided."""

    status: PushStatus = PushStatus.SKIPPED


def _claim_existing(
    session: Session, items: list[dict[str, Any]], *, now: dt.datetime, catalog: TemplateCatalog
) -> dict[str, _Attempt]:
    """The general way for attempt rows already there: claim them if claimable, let notify
    check them (`prepare_many`). Rows not ours to send are left out."""
    keys = notify_outbox.enqueue_many(session, items, now=now, catalog=catalog)
    rows = notify_outbox.claim_ids(
        session, list(keys.values()), now=now, lease_seconds=HOLD.total_seconds()
    )
    _reserve_grants(session, rows, now)
    attempts: dict[str, _Attempt] = {}
    for row, decision in zip(
        rows, notify_sender.prepare_many(session, rows, now=now, policy=_ONE_ATTEMPT), strict=True
    ):
        if decision in (Outcome.LOST, Outcome.DEFERRED):
            continue
        attempts[row.dedupe_key] = _Attempt(
            id=row.id,
            claim_token=row.claim_token,
            template_id=row.template_id,
            data=dict(row.data),
            page=row.page,
            openid=decision.openid if isinstance(decision, notify_sender.Ready) else None,
            status=PushStatus.SKIPPED if decision is Outcome.SKIPPED else PushStatus.FAILED,
            code=row.last_error_code,
        )
    return attempts


def _reserve_grants(session: Session, rows: list[NotificationOutbox], now: dt.datetime) -> None:
    """Take the batch's one-time authorisations up front and flag the rows in one UPDATE.

    `prepare_many` would take them too, but then flag each row through the ORM, one versioned
    UPDATE per row. Finding them flagged, it counts them as taken and writes nothing; it still
    decides everything else (user gone, long-term or no authorisation, the fence) as for any
    notification, and gives back what it refuses. Only rows it will find held are flagged
    here, so no authorisation is taken for a row it calls lost.
    """
    wanted = [
        row
        for row in rows
        if not row.grant_reserved
        and row.status is OutboxStatus.SENDING
        and row.locked_until is not None
        and row.locked_until > now
    ]
    uses = notify_outbox.reserve_grants(session, [(row.user_id, row.template_id) for row in wanted])
    taken = [row for row, use in zip(wanted, uses, strict=True) if use is GrantUse.ONE_TIME]
    if not taken:
        return
    session.execute(
        update(NotificationOutbox)
        .where(NotificationOutbox.id.in_([row.id for row in taken]))
        .values(grant_reserved=True)
        .execution_options(synchronize_session=False)
    )
    for row in taken:
        set_committed_value(row, "grant_reserved", True)


def _dedupe_key(push: _Push) -> str:
    # One notification row per attempt; `attempts` is bumped when the attempt is made.
    return f"policy-push:{push.id}:{push.attempts + 1}"


def take_off(
    session: Session, sends: list[Send], *, now: dt.datetime, settings: PushSettings
) -> list[Send]:
    """Mark claimed pushes IN_FLIGHT (one UPDATE; never commits): the sends still ours.

    Committed, this is the in-flight marker of the pushes about to be sent. Each is guarded
    by its claim token and CLAIMED status: a push whose claim ran out meanwhile (`recover`
    put it back, another worker may have claimed it again) is not marked, and not sent.
    """
    if not sends:
        return []
    marked = set(
        session.scalars(
            update(_PUSHES)
            .where(
                pairs_in(
                    session,
                    _PUSHES.c.id,
                    _PUSHES.c.claim_token,
                    [(send.push_id, send.claim_token) for send in sends],
                ),
                _PUSHES.c.status == PushStatus.CLAIMED.value,
            )
            .values(
                status=PushStatus.IN_FLIGHT.value,
                in_flight_at=now,
                locked_until=now + dt.timedelta(seconds=settings.lease_seconds),
            )
            .returning(_PUSHES.c.id)
        )
    )
    return [send for send in sends if send.push_id in marked]


# -- sending and recording -------------------------------------------------------------------


_ONE_ATTEMPT = notify_sender.RetryPolicy(max_attempts=1, lease_seconds=HOLD.total_seconds())

# What a send came back with: None (accepted), WeChat's error, or anything else (in doubt).
Answer = WeChatError | Exception | None


class BatchSender(Protocol):
    """The one WeChat call the drain makes (`wechat.client.WeChatClient` has it)."""

    def send_subscribe_messages(
        self,
        messages: Sequence[SubscribeMessage],
        *,
        connections: int,
        on_ready_for_next: Callable[[], None] | None = None,
    ) -> Sequence[WeChatError | None]: ...


def send_all(
    wechat: BatchSender,
    sends: list[Send],
    *,
    connections: int,
    on_ready_for_next: Callable[[], None] | None = None,
) -> list[Answer]:
    """Send the batch, `connections` requests at a time; answers in the batch's order.
    `on_ready_for_next` is called when the next batch may follow (see
    `WeChatClient.send_subscribe_messages`).

    WeChat's and the network's answers come back per message. An error the batch call raises
    is none of them but a failure of the call itself, after which any of the sends may have
    left: it is every send's answer as an error that is not WeChat's, so each push is IN_DOUBT
    and never sent again (a WeChatError raised for the whole batch could read as "busy, try
    again" for a message WeChat had accepted). A BaseException still kills the worker.
    """
    messages = [
        SubscribeMessage(send.openid, send.template_id, send.data, page=send.page) for send in sends
    ]
    try:
        return list(
            wechat.send_subscribe_messages(
                messages, connections=connections, on_ready_for_next=on_ready_for_next
            )
        )
    except Exception as error:
        log.exception("policy push batch failed while sending", extra={"sends": len(sends)})
        unknown = RuntimeError(type(error).__name__) if isinstance(error, WeChatError) else error
        return [unknown] * len(sends)


def _push_outcome(
    send: Send, answer: Answer, now: dt.datetime, settings: PushSettings
) -> tuple[PushStatus, str | None, dt.datetime | None]:
    """The push's status, reason and (retry) due time for what WeChat answered."""
    if answer is None:
        return PushStatus.SENT, None, None
    if not isinstance(answer, WeChatError):
        return PushStatus.IN_DOUBT, f"SEND_ERROR:{type(answer).__name__}"[:64], None
    if isinstance(answer, TransportError) and answer.maybe_processed:
        return PushStatus.IN_DOUBT, "MAYBE_PROCESSED", None
    code = str(answer.errcode) if answer.errcode is not None else type(answer).__name__
    if isinstance(answer, SubscriptionRefused):
        return PushStatus.SKIPPED, code, None
    if (answer.transient or isinstance(answer, QuotaExhausted)) and (
        send.attempts < settings.max_attempts
    ):
        delay = (
            3600.0
            if isinstance(answer, QuotaExhausted)
            else settings.retry_base_seconds * 2 ** (send.attempts - 1)
        )
        return PushStatus.WAITING, code, now + dt.timedelta(seconds=delay)
    return PushStatus.FAILED, code, None


@built_once
def _record_statement(dialect: str) -> tuple[Any, RowSource]:
    """A batch's push outcomes, in one statement (on PostgreSQL; one executemany elsewhere),
    each guarded by the push's claim token and in-flight status."""
    rows = RowSource(
        dialect,
        {
            "b_id": _PUSHES.c.id.type,
            "b_token": _PUSHES.c.claim_token.type,
            "b_status": _PUSHES.c.status.type,
            "b_reason": _PUSHES.c.reason.type,
            "b_sent_at": _PUSHES.c.sent_at.type,
            "b_due_at": _PUSHES.c.due_at.type,
        },
    )
    statement = (
        update(_PUSHES)
        .where(
            _PUSHES.c.id == rows["b_id"],
            _PUSHES.c.claim_token == rows["b_token"],
            _PUSHES.c.status == PushStatus.IN_FLIGHT.value,
        )
        .values(
            status=rows["b_status"],
            reason=rows["b_reason"],
            locked_until=None,
            sent_at=rows["b_sent_at"],
            due_at=func.coalesce(rows["b_due_at"], _PUSHES.c.due_at),
        )
    )
    return statement, rows


@built_once
def _accepted_statement(dialect: str) -> tuple[Any, RowSource]:
    """What `NotificationOutbox.mark_sent` writes, for a whole batch in one statement (one
    executemany elsewhere; the ORM writes a versioned row one UPDATE at a time), guarded like
    the ORM by the claim token."""
    rows = RowSource(
        dialect,
        {
            "n_id": _OUTBOX.c.id.type,
            "n_token": _OUTBOX.c.claim_token.type,
            "n_sent_at": _OUTBOX.c.sent_at.type,
        },
    )
    statement = (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id == rows["n_id"],
            _OUTBOX.c.claim_token == rows["n_token"],
            _OUTBOX.c.status == OutboxStatus.SENDING.value,
        )
        .values(
            status=OutboxStatus.SENT.value,
            sent_at=rows["n_sent_at"],
            locked_until=None,
            last_error_code=None,
        )
    )
    return statement, rows


def record_outcomes(
    session: Session,
    sends: list[Send],
    answers: list[Answer],
    *,
    now: dt.datetime,
    settings: PushSettings,
) -> list[PushStatus]:
    """Record the batch's answers on the notification rows (notify's rules) and the pushes.

    Flushes, never commits: the caller commits the whole batch's outcome at once. Accepted
    sends are written in one statement per table; the others go through `notify.sender.record`
    row by row. Each UPDATE is guarded by the row's claim token and in-flight status, so a
    push that recovery has meanwhile settled is left as recovery decided.
    """
    unsent = [
        send.notification_id
        for send, answer in zip(sends, answers, strict=True)
        if answer is not None
    ]
    rows = {
        row.id: row
        for row in (
            session.scalars(
                select(NotificationOutbox)
                .where(NotificationOutbox.id.in_(unsent))
                .execution_options(populate_existing=True)
            )
            if unsent
            else []
        )
    }
    accepted: list[dict[str, Any]] = []
    params, statuses = [], []
    for send, answer in zip(sends, answers, strict=True):
        if answer is None:
            accepted.append(
                {"n_id": send.notification_id, "n_token": send.notification_token, "n_sent_at": now}
            )
        elif (row := rows.get(send.notification_id)) is not None and (
            row.status is OutboxStatus.SENDING
        ):
            if isinstance(answer, WeChatError):
                notify_sender.record(session, row, answer, now=now, policy=_ONE_ATTEMPT)
            else:  # the request may have left: the grant stays spent
                row.finish(OutboxStatus.FAILED, "IN_DOUBT")
        status, reason, due_at = _push_outcome(send, answer, now, settings)
        statuses.append(status)
        params.append(
            {
                "b_id": send.push_id,
                "b_token": send.claim_token,
                "b_status": status.value,
                "b_reason": reason,
                "b_sent_at": now if status is PushStatus.SENT else None,
                "b_due_at": due_at,
            }
        )
    session.flush()
    dialect = session.get_bind().dialect.name
    if accepted:
        mark_sent, sent_rows = _accepted_statement(dialect)
        session.execute(mark_sent, sent_rows.params(accepted))
    record, outcome_rows = _record_statement(dialect)
    session.execute(record, outcome_rows.params(params))
    return statuses


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
            # Claimed, never taken off: its worker died or stalled before the batch's turn,
            # and WeChat was not called. Close the attempt's row; the push goes again.
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


# -- the worker loop ---------------------------------------------------------------------------


@dataclass
class DrainStats:
    limit: int = 0  # the batch asked for
    taken: int = 0  # due pushes looked at (as many as asked: more may be due)
    claimed: int = 0  # pushes handed to WeChat
    outcomes: dict[str, int] | None = None

    def count(self, status: PushStatus | None) -> None:
        self.outcomes = self.outcomes or {}
        key = status.value if status else "lost"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


def drain_once(
    session_factory: sessionmaker[Session],
    wechat: BatchSender,
    *,
    now_fn: Callable[[], dt.datetime],
    settings: PushSettings,
    catalog: TemplateCatalog,
    gate: Callable[[], bool] | None = None,
    send_lock: AbstractContextManager[Any] | None = None,
) -> DrainStats:
    """Recover stuck pushes, claim up to `settings.claim_size`, then send them a batch at a
    time: mark it IN_FLIGHT (one commit; with the first batch, the claim's), send, record (one
    commit).

    Drains sharing a `send_lock` overlap their claims and records with each other's sends,
    and take turns to commit a batch IN_FLIGHT and hand it to WeChat. The turn passes on once
    the batch has started (a child-process sender, `wechat.batch_sender`: the next batch
    waits behind it and takes each connection it frees) or been answered (a sender in this
    process). A claimed batch waiting for the turn is not yet committed IN_FLIGHT, so a crash
    leaves IN_DOUBT only the batches handed over and not yet recorded (one per loop at most;
    in practice the one on the wire and the one behind it); the claimed pushes not yet taken
    off go back when their lease runs out (`recover`).
    """
    stats = DrainStats()
    # Part of each window stays free for citizens' notifications, whatever the push's size.
    slots = take_slots(gate, settings.claim_size, keep=settings.left_to_notifications)
    stats.limit = slots.count
    with session_factory() as session:
        recover(session, now=now_fn())
        stats.taken, claimed = claim_batch(
            session, now=now_fn(), settings=settings, limit=slots.count, catalog=catalog
        )
        # The slots of pushes not claimed, or decided without a send, go back to the account's
        # quota: kept, a drain finding little due spent the window citizens' notices share.
        give_back(gate, slots, used=len(claimed))
        if not claimed:
            session.commit()
            return stats
        for start in range(0, len(claimed), settings.batch):
            # Marked before this loop takes its turn on the wire: the loop holding the turn
            # must never wait for a row lock. Another loop's claim, waiting for the turn, may
            # hold one on a push of this batch: PostgreSQL's FOR UPDATE SKIP LOCKED keeps rows
            # locked that it read as waiting and found claimed meanwhile, unreturned.
            batch = claimed[start : start + settings.batch]
            sends = take_off(session, batch, now=now_fn(), settings=settings)
            if not sends:  # the claims ran out meanwhile: recovered, perhaps claimed again
                session.commit()
                continue
            with ExitStack() as turn:
                if send_lock is not None:
                    turn.enter_context(send_lock)
                # The in-flight marker of the batch (with the first, the claim): durable before
                # the first request leaves. A crash from here until the outcome commit leaves
                # these pushes IN_DOUBT, never resent.
                session.commit()
                # The turn passes on when the sender can take the next batch: a child-process
                # sender once this one has started (the next waits behind it, on the
                # connections this one frees), a sender in this process once it is answered.
                answers = send_all(
                    wechat, sends, connections=settings.connections, on_ready_for_next=turn.close
                )
            stats.claimed += len(sends)
            for status in record_outcomes(session, sends, answers, now=now_fn(), settings=settings):
                stats.count(status)
            session.commit()
    # One line per claim: the accepted sends are recorded without notify's line per row.
    log.info("policy push batch", extra={"claimed": stats.claimed, "outcomes": stats.outcomes})
    return stats

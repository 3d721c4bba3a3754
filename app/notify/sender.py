"""Delivering outbox rows to WeChat: one row (`deliver`) or a batch of due rows (`drain`).

These are job steps, not request services: they run outside any request and commit their own
work, because a WeChat call must not sit inside an open write transaction (on SQLite that
would hold the database's one write lock for the length of an HTTP call).

Delivery semantics, chosen and bounded:

- A row is sent only by the worker holding its lease. `claim_due`/`claim_one` lease it and
  bump its `claim_token`; right before the send the worker renews the lease with an UPDATE
  guarded by that token and commits. A worker whose lease ran out and whose row was claimed
  again finds nothing to renew and stops, and the mapper's version check on `claim_token`
  keeps it from overwriting the new claimer's outcome. So within one lease a row is sent at
  most once, and `dedupe_key` made sure the event was enqueued once in the first place.
- Exactly-once delivery to WeChat cannot be guaranteed: if a process dies after WeChat
  accepted the message and before the commit that marks the row `sent`, the lease runs out
  and another worker sends it again. The same holds for a timeout after WeChat received the
  request (`TransportError.maybe_processed`), which is retried. For these notifications a
  rare duplicate ("your number is called", twice) is better than a lost one, so the outbox is
  at-least-once across crashes and at-most-once per lease. WeChat itself narrows the window:
  a repeat that finds the user's one-time authorisation spent is refused with 43101.
- The user's one-time grant is taken before the send and committed with the row's
  `grant_reserved` flag, so a retry after a crash does not take a second one; it is given
  back when nothing was delivered (transient error, permanent error), and zeroed when
  WeChat says the user holds none (43101).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.identity.models import User
from app.notify import outbox
from app.notify.models import NotificationOutbox, OutboxStatus
from app.notify.sql import any_of
from app.notify.templates import TemplateCatalog, get_catalog
from app.observability.metrics import count_task
from wechat.errors import QuotaExhausted, SubscriptionRefused, WeChatError

log = logging.getLogger(__name__)

# The task name of a delivery in the job-outcome metric (app.observability.metrics).
DELIVERY_TASK = "notification"
# A delivery that raised: the row keeps its lease and is claimed again.
DELIVERY_ERROR = "error"

NO_SUBSCRIPTION = outbox.NO_SUBSCRIPTION
USER_UNAVAILABLE = "USER_UNAVAILABLE"
TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
SEND_RATE = "SEND_RATE"


class SubscribeMessageSender(Protocol):
    """The one WeChat call this module needs (`wechat.client.WeChatClient` has it)."""

    def send_subscribe_message(
        self, touser: str, template_id: str, data: dict[str, str], page: str | None = None
    ) -> None: ...


# Asked before each send; False means "the global send rate is used up, try again shortly".
SendGate = Callable[[], bool]


class Outcome(enum.StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"  # a transient error; pending again with backoff
    DEFERRED = "deferred"  # the send rate was used up; pending again, attempt not counted
    LOST = "lost"  # the lease ran out before we got to it; another worker owns the row


@dataclass(frozen=True)
class RetryPolicy:
    """Leases, backoff and the attempt cap of delivery."""

    max_attempts: int = 6
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 3600.0
    # Longer than the client's worst case (timeout x its own retries), so a live send is
    # never taken over by another worker.
    lease_seconds: float = 60.0
    deferral_seconds: float = 1.0
    # The daily quota (45009) comes back tomorrow, not in seconds.
    quota_delay_seconds: float = 3600.0

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay after the `attempts`-th failed try: base, 2x base, 4x base, ... capped."""
        seconds = self.base_delay_seconds * 2 ** max(attempts - 1, 0)
        return dt.timedelta(seconds=min(seconds, self.max_delay_seconds))


DEFAULT_POLICY = RetryPolicy()


def _error_code(error: WeChatError) -> str:
    # WeChat's own code where it gave one ("43101", "-1"); otherwise what failed locally.
    return str(error.errcode) if error.errcode is not None else type(error).__name__


def _give_back(session: Session, row: NotificationOutbox) -> None:
    if row.grant_reserved:
        outbox.return_grant(session, row.user_id, row.template_id)
        row.grant_reserved = False


def deliver(
    session: Session,
    wechat: SubscribeMessageSender,
    row: NotificationOutbox,
    *,
    now: dt.datetime,
    policy: RetryPolicy = DEFAULT_POLICY,
    gate: SendGate | None = None,
    claimed_in_transaction: bool = False,
) -> Outcome:
    """Send one claimed row and record the outcome; commits (see the module docstring)."""
    [ready] = prepare_many(
        session,
        [row],
        now=now,
        policy=policy,
        gate=gate,
        claimed_in_transaction=claimed_in_transaction,
    )
    if isinstance(ready, Outcome):
        if ready is Outcome.LOST:
            session.rollback()
        else:
            session.commit()
        return ready
    # Durable before the send: a crash from here on must not take a second grant.
    session.commit()
    try:
        wechat.send_subscribe_message(ready.openid, row.template_id, dict(row.data), page=row.page)
    except WeChatError as error:
        outcome = record(session, row, error, now=now, policy=policy)
    else:
        outcome = record(session, row, None, now=now, policy=policy)
    session.commit()
    return outcome


@dataclass(frozen=True)
class Ready:
    """A row that passed every check before the send: fenced, authorised, addressed."""

    row: NotificationOutbox
    openid: str


def prepare_many(
    session: Session,
    rows: list[NotificationOutbox],
    *,
    now: dt.datetime,
    policy: RetryPolicy = DEFAULT_POLICY,
    gate: SendGate | None = None,
    claimed_in_transaction: bool = False,
) -> list[Ready | Outcome]:
    """The checks before a send, for claimed rows in a few statements; flushes, never commits.

    `claimed_in_transaction`: the rows were claimed in the session's open transaction, so
    their claim UPDATE still holds them locked and its lease is the fence (no renewal).

    Per row, in order: lease still ours, attempt cap, user present and enabled, a send slot
    (`gate`), the lease renewed under its claim token (the fence), one authorisation taken
    (never send without one). An `Outcome` means decided without sending; `Ready` rows must be
    committed before the send (the fence and the grant are then durable), then `record`ed.
    """
    results: list[Ready | Outcome | None] = [None] * len(rows)
    users = {
        user.id: user
        for user in session.scalars(
            select(User).where(User.id.in_(sorted({row.user_id for row in rows})))
        )
    }
    fenced: list[int] = []
    for index, row in enumerate(rows):
        if (
            row.status is not OutboxStatus.SENDING
            or row.locked_until is None
            or (row.locked_until <= now)
        ):
            results[index] = Outcome.LOST
            continue
        # A row that crashed its worker over and over (claims count as attempts) stops here.
        if row.attempts > policy.max_attempts:
            _give_back(session, row)
            row.finish(OutboxStatus.FAILED, TOO_MANY_ATTEMPTS)
            results[index] = Outcome.FAILED
            continue
        user = users.get(row.user_id)
        if user is None or user.disabled:
            _give_back(session, row)
            row.finish(OutboxStatus.SKIPPED, USER_UNAVAILABLE)
            results[index] = Outcome.SKIPPED
            continue
        if gate is not None and not gate():
            row.reschedule(
                at=now + dt.timedelta(seconds=policy.deferral_seconds),
                code=None,
                count_attempt=False,
            )
            results[index] = Outcome.DEFERRED
            continue
        fenced.append(index)
    # The fence: only the current lease holder gets past this, with a fresh lease for the send.
    renewed = (
        {rows[i].id for i in fenced}
        if claimed_in_transaction
        else outbox.renew_leases(
            session, [rows[i] for i in fenced], now=now, lease_seconds=policy.lease_seconds
        )
    )
    wanting: list[int] = []
    for index in fenced:
        if rows[index].id not in renewed:
            results[index] = Outcome.LOST
        elif rows[index].grant_reserved:
            results[index] = Ready(rows[index], users[rows[index].user_id].openid)
        else:
            wanting.append(index)
    uses = outbox.reserve_grants(session, [(rows[i].user_id, rows[i].template_id) for i in wanting])
    for index, use in zip(wanting, uses, strict=True):
        row = rows[index]
        if use is None:
            # Never send without the user's authorisation.
            row.finish(OutboxStatus.SKIPPED, NO_SUBSCRIPTION)
            results[index] = Outcome.SKIPPED
            continue
        row.grant_reserved = use is outbox.GrantUse.ONE_TIME
        results[index] = Ready(row, users[row.user_id].openid)
    session.flush()
    return [result if result is not None else Outcome.LOST for result in results]


@dataclass(frozen=True)
class Claimed:
    """A notification `enqueue_claimed` inserted already claimed by its caller."""

    id: int
    claim_token: int
    template_id: str
    data: dict[str, str]
    page: str | None
    # Where to send it (`Ready`), or None when it was decided without a send:
    openid: str | None
    # ... then SKIPPED with `code` (the row is final).
    code: str | None = None


def enqueue_claimed(
    session: Session,
    items: list[dict[str, Any]],
    *,
    now: dt.datetime,
    lease_seconds: float,
    catalog: TemplateCatalog | None = None,
) -> dict[str, Claimed]:
    """`enqueue_many` + `claim_ids` + `prepare_many` for new notifications, in four statements.

    For a caller that delivers its notifications itself and has taken its send rate (no
    `gate`). Each item (as for `enqueue_many`) gets its row in one INSERT, already in the state
    `prepare_many` would leave it in after the claim: SENDING under the caller's lease (attempt
    1, claim token 1) with the user's authorisation taken, or SKIPPED (USER_UNAVAILABLE,
    NO_SUBSCRIPTION). No lease to check or fence to renew: nobody else can see a row before
    the caller commits. Flushes nothing through the ORM and never commits; commit before the
    send, then record the answers as for `prepare_many`'s rows.

    An item whose dedupe key is taken is left out of the answer (its authorisation, if
    taken, given back): the caller claims that row the general way.
    """
    if not items:
        return {}
    catalog = catalog or get_catalog()
    values = [outbox.row_values(item, now=now, catalog=catalog) for item in items]
    users = {
        row.id: row
        for row in session.execute(
            select(User.id, User.openid, User.disabled).where(
                any_of(session, User.id, sorted({value["user_id"] for value in values}))
            )
        )
    }
    present = [
        value
        for value in values
        if (user := users.get(value["user_id"])) is not None and not user.disabled
    ]
    uses = dict(
        zip(
            (value["dedupe_key"] for value in present),
            outbox.reserve_grants(
                session, [(value["user_id"], value["template_id"]) for value in present]
            ),
            strict=True,
        )
    )
    until = now + dt.timedelta(seconds=lease_seconds)
    for value in values:
        key = value["dedupe_key"]
        code = USER_UNAVAILABLE if key not in uses else None
        if code is None and uses[key] is None:
            code = NO_SUBSCRIPTION  # never send without the user's authorisation
        value.update(
            status=OutboxStatus.SENDING if code is None else OutboxStatus.SKIPPED,
            attempts=1,
            claim_token=1,
            locked_until=until if code is None else None,
            last_attempt_at=now,
            last_error_code=code,
            grant_reserved=uses.get(key) is outbox.GrantUse.ONE_TIME,
        )
    inserted = outbox.insert_many(session, values)
    claimed: dict[str, Claimed] = {}
    for value in values:
        key = value["dedupe_key"]
        if key not in inserted:
            if value["grant_reserved"]:
                outbox.return_grant(session, value["user_id"], value["template_id"])
            continue
        code = value["last_error_code"]
        claimed[key] = Claimed(
            id=inserted[key],
            claim_token=1,
            template_id=value["template_id"],
            data=value["data"],
            page=value["page"],
            openid=users[value["user_id"]].openid if code is None else None,
            code=code,
        )
    return claimed


def record(
    session: Session,
    row: NotificationOutbox,
    error: WeChatError | None,
    *,
    now: dt.datetime,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Outcome:
    """Record what WeChat answered for a `Ready` row (None: accepted); never commits."""
    if error is None:
        row.mark_sent(now=now)
        outcome = Outcome.SENT
    elif isinstance(error, SubscriptionRefused):
        # WeChat counts grants authoritatively: ours was wrong, so stop believing it.
        outbox.revoke_grant(session, row.user_id, row.template_id, now=now)
        row.grant_reserved = False
        row.finish(OutboxStatus.SKIPPED, _error_code(error))
        outcome = Outcome.SKIPPED
    else:
        _give_back(session, row)
        outcome = _after_failure(row, error, now=now, policy=policy)
    log.info(
        "notification %s",
        outcome.value,
        extra={"outbox_id": row.id, "template_key": row.template_key, "code": row.last_error_code},
    )
    return outcome


def _after_failure(
    row: NotificationOutbox, error: WeChatError, *, now: dt.datetime, policy: RetryPolicy
) -> Outcome:
    code = _error_code(error)
    exhausted = row.attempts >= policy.max_attempts
    if isinstance(error, QuotaExhausted) and not exhausted:
        row.reschedule(at=now + dt.timedelta(seconds=policy.quota_delay_seconds), code=code)
        return Outcome.RETRY
    if error.transient and not exhausted:
        row.reschedule(at=now + policy.backoff(row.attempts), code=code)
        return Outcome.RETRY
    # Bad template, bad data, bad argument, or out of attempts: retrying will not help.
    row.finish(OutboxStatus.FAILED, code)
    return Outcome.FAILED


@dataclass
class DrainStats:
    """What one drain did, by outcome."""

    claimed: int = 0
    errors: int = 0
    outcomes: dict[Outcome, int] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def __getitem__(self, outcome: Outcome) -> int:
        return self.outcomes.get(outcome, 0)


def _deliver_guarded(
    session: Session,
    wechat: SubscribeMessageSender,
    row: NotificationOutbox,
    *,
    now_fn: Callable[[], dt.datetime],
    policy: RetryPolicy,
    gate: SendGate | None,
    claimed_in_transaction: bool = False,
) -> Outcome | None:
    """`deliver`, with any unexpected error contained to this row (None then); counted.

    Every delivery, by the drain or by its own message, in a worker or in this process,
    passes here: the one place its outcome is counted.
    """
    row_id = row.id
    outcome: Outcome | None
    try:
        outcome = deliver(
            session,
            wechat,
            row,
            now=now_fn(),
            policy=policy,
            gate=gate,
            claimed_in_transaction=claimed_in_transaction,
        )
    except StaleDataError:
        session.rollback()
        log.warning("outbox row claimed again by another worker", extra={"outbox_id": row_id})
        outcome = Outcome.LOST
    except Exception:
        # The row keeps its lease and is claimed again once it runs out (a single delivery's
        # claim, if the error came before its first commit, is rolled back with the rest:
        # nothing was sent, and the next sweep finds the row pending).
        session.rollback()
        log.exception("delivering an outbox row failed", extra={"outbox_id": row_id})
        outcome = None
    count_task(DELIVERY_TASK, outcome.value if outcome is not None else DELIVERY_ERROR)
    return outcome


def drain(
    session_factory: sessionmaker[Session],
    wechat: SubscribeMessageSender,
    *,
    now_fn: Callable[[], dt.datetime],
    batch: int = 50,
    policy: RetryPolicy = DEFAULT_POLICY,
    gate: SendGate | None = None,
) -> DrainStats:
    """Claim up to `batch` due rows and deliver each, committing per row.

    One failing row never blocks the others. A crash mid-drain leaves at most the rows
    leased by this call, claimable again when their lease runs out.
    """
    stats = DrainStats()
    with session_factory() as session:
        rows = outbox.claim_due(
            session, now=now_fn(), limit=batch, lease_seconds=policy.lease_seconds
        )
        session.commit()
        stats.claimed = len(rows)
        for row in rows:
            outcome = _deliver_guarded(
                session, wechat, row, now_fn=now_fn, policy=policy, gate=gate
            )
            if outcome is None:
                stats.errors += 1
            else:
                stats.count(outcome)
    return stats


@dataclass(frozen=True)
class SingleDelivery:
    outcome: Outcome | None  # None: not claimable (already taken, not due, or gone)
    next_attempt_at: dt.datetime | None = None


def deliver_by_id(
    session_factory: sessionmaker[Session],
    wechat: SubscribeMessageSender,
    outbox_id: int,
    *,
    now_fn: Callable[[], dt.datetime],
    policy: RetryPolicy = DEFAULT_POLICY,
    gate: SendGate | None = None,
) -> SingleDelivery:
    """Claim one row if it is due and deliver it (the "deliver outbox row N" message).

    The claim is committed with the checks before the send (`deliver`), not on its own as a
    drain's batch is: until then its row lock keeps another claimer waiting, and then out
    (the row is leased); a crash before that commit leaves the row unclaimed and unsent. The
    claim is also the fence the checks would renew. A commit and a lease renewal fewer per
    message.
    """
    with session_factory() as session:
        row = outbox.claim_one(session, outbox_id, now=now_fn(), lease_seconds=policy.lease_seconds)
        if row is None:
            return SingleDelivery(None)
        outcome = _deliver_guarded(
            session,
            wechat,
            row,
            now_fn=now_fn,
            policy=policy,
            gate=gate,
            claimed_in_transaction=True,
        )
        retry_at = row.next_attempt_at if outcome in (Outcome.RETRY, Outcome.DEFERRED) else None
        return SingleDelivery(outcome, retry_at)

"""Delivery through the WeChat emulator over real HTTP: sent, skipped, failed, retried."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from app.db import utcnow
from app.integrations.wechat import get_wechat
from app.notify import outbox
from app.notify.models import NotificationOutbox, OutboxStatus
from app.notify.sender import DrainStats, Outcome, RetryPolicy, deliver, drain
from tests.factories.notify import emulator_fault

Drain = Callable[..., DrainStats]


@pytest.fixture
def drain_at(app: Flask, session: Session) -> Drain:
    """Drain the outbox as a worker would at time `at` (default: now)."""

    def run(at: dt.datetime | None = None, policy: RetryPolicy | None = None, **kw) -> DrainStats:  # type: ignore[no-untyped-def]
        moment = at or utcnow()
        return drain(
            app.extensions["db"].sessionmaker,
            get_wechat(app),
            now_fn=lambda: moment,
            policy=policy or RetryPolicy(),
            **kw,
        )

    return run


def _reload(session: Session, row: NotificationOutbox) -> NotificationOutbox:
    session.refresh(row)
    return row


def _remaining(session: Session, user_id: int, template_id: str = "queue_called") -> int:
    grants = {g.template_id: g for g in outbox.grants_for_user(session, user_id)}
    return grants[template_id].one_time_remaining if template_id in grants else 0


def test_granted_notification_is_sent_once_and_reaches_wechat(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    row = enqueue_notification(user, "queue_called")

    stats = drain_at()
    again = drain_at(utcnow() + dt.timedelta(hours=1))

    assert stats.claimed == 1 and stats[Outcome.SENT] == 1
    assert again.claimed == 0
    row = _reload(session, row)
    assert row.status is OutboxStatus.SENT and row.sent_at is not None and row.attempts == 1
    messages = sent_to(user)
    assert len(messages) == 1
    assert messages[0]["template_id"] == "queue_called"
    assert messages[0]["data"]["character_string1"] == "A012"
    assert messages[0]["page"] == "pages/queue/ticket?id=1"
    assert _remaining(session, user.id) == 0


def test_without_a_grant_the_row_is_skipped_and_nothing_is_sent(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    # WeChat would accept it, but the user never told us they allowed it: we do not send.
    grant_subscription(user, "queue_called", locally=False)
    row = enqueue_notification(user, "queue_called")

    stats = drain_at()

    # Settled as it was written: there is nothing for a worker to claim.
    assert stats.claimed == 0
    row = _reload(session, row)
    assert row.status is OutboxStatus.SKIPPED and row.last_error_code == "NO_SUBSCRIPTION"
    assert sent_to(user) == []


def test_a_grant_switched_off_before_the_send_skips_the_row_and_nothing_is_sent(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    row = enqueue_notification(user, "queue_called")
    # Between the event and the send the user switched the template off (a ban).
    outbox.record_subscription_result(session, user.id, {"queue_called": "ban"}, utcnow())
    session.commit()

    stats = drain_at()

    assert stats.claimed == 1 and stats[Outcome.SKIPPED] == 1
    row = _reload(session, row)
    assert row.status is OutboxStatus.SKIPPED and row.last_error_code == "NO_SUBSCRIPTION"
    assert sent_to(user) == []


def test_refused_by_wechat_is_skipped_without_retry_and_the_grant_forgotten(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called", count=2, in_wechat=False)  # our count is wrong
    row = enqueue_notification(user, "queue_called")

    stats = drain_at()
    later = drain_at(utcnow() + dt.timedelta(days=1))

    assert stats[Outcome.SKIPPED] == 1 and later.claimed == 0
    row = _reload(session, row)
    assert row.status is OutboxStatus.SKIPPED and row.last_error_code == "43101"
    assert row.attempts == 1
    assert _remaining(session, user.id) == 0
    assert sent_to(user) == []


def test_a_transient_error_is_retried_after_a_backoff_and_then_sent(
    session,
    create_wechat_user,
    grant_subscription,
    enqueue_notification,
    drain_at,
    sent_to,
    emulator_url,
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    start = utcnow()
    row = enqueue_notification(user, "queue_called", now=start)
    # The client retries "system busy" twice itself; the third answer reaches the outbox.
    emulator_fault(emulator_url, -1, times=3)

    first = drain_at(start)
    row = _reload(session, row)
    assert first[Outcome.RETRY] == 1
    assert row.status is OutboxStatus.PENDING and row.last_error_code == "-1"
    assert row.next_attempt_at == start + dt.timedelta(seconds=30)
    assert _remaining(session, user.id) == 1  # nothing was delivered, the grant is back
    assert sent_to(user) == []

    too_early = drain_at(start + dt.timedelta(seconds=29))
    assert too_early.claimed == 0

    second = drain_at(start + dt.timedelta(seconds=30))
    row = _reload(session, row)
    assert second[Outcome.SENT] == 1
    assert row.status is OutboxStatus.SENT and row.attempts == 2
    assert len(sent_to(user)) == 1
    assert _remaining(session, user.id) == 0


def test_backoff_doubles_and_the_row_fails_after_the_last_attempt(
    session,
    create_wechat_user,
    grant_subscription,
    enqueue_notification,
    drain_at,
    sent_to,
    emulator_url,
):
    policy = RetryPolicy(max_attempts=3, base_delay_seconds=10)
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    start = utcnow()
    row = enqueue_notification(user, "queue_called", now=start)
    emulator_fault(emulator_url, -1, times=3 * 3)

    moment = start
    delays = []
    for _ in range(3):
        drain_at(moment, policy)
        row = _reload(session, row)
        delays.append(row.next_attempt_at - moment)
        moment = row.next_attempt_at

    assert delays[:2] == [dt.timedelta(seconds=10), dt.timedelta(seconds=20)]
    assert row.status is OutboxStatus.FAILED and row.attempts == 3
    assert row.last_error_code == "-1"
    assert _remaining(session, user.id) == 1
    assert sent_to(user) == []


def test_invalid_template_data_fails_at_once_and_keeps_the_grant(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    row = enqueue_notification(
        user, "queue_called", data={"character_string1": "甲012", "time4": "明天"}
    )

    stats = drain_at()

    assert stats[Outcome.FAILED] == 1
    row = _reload(session, row)
    assert row.status is OutboxStatus.FAILED and row.last_error_code == "47003"
    assert _remaining(session, user.id) == 1
    assert sent_to(user) == []


def test_a_failing_row_never_blocks_the_rows_after_it(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called", count=2)
    start = utcnow()
    broken = enqueue_notification(user, "queue_called", data={"time4": "不是时间"}, now=start)
    good = enqueue_notification(user, "queue_called", now=start + dt.timedelta(seconds=1))

    stats = drain_at(start + dt.timedelta(seconds=2))

    assert stats.claimed == 2 and stats[Outcome.FAILED] == 1 and stats[Outcome.SENT] == 1
    assert _reload(session, broken).status is OutboxStatus.FAILED
    assert _reload(session, good).status is OutboxStatus.SENT
    assert len(sent_to(user)) == 1


def test_an_unexpected_error_on_one_row_leaves_it_leased_and_the_others_sent(
    app, session, create_wechat_user, grant_subscription, enqueue_notification, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called", count=2)
    start = utcnow()
    first = enqueue_notification(user, now=start)
    second = enqueue_notification(user, now=start + dt.timedelta(seconds=1))
    real = get_wechat(app)

    class Flaky:
        calls = 0

        def send_subscribe_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("a bug, not a WeChat error")
            return real.send_subscribe_message(*args, **kwargs)

    at = start + dt.timedelta(seconds=2)
    stats = drain(app.extensions["db"].sessionmaker, Flaky(), now_fn=lambda: at)

    assert stats.errors == 1 and stats[Outcome.SENT] == 1
    first, second = _reload(session, first), _reload(session, second)
    assert second.status is OutboxStatus.SENT
    # Still leased; the grant stays reserved on the row so the retry does not take another.
    assert first.status is OutboxStatus.SENDING and first.grant_reserved
    assert _remaining(session, user.id) == 0

    retry = drain(
        app.extensions["db"].sessionmaker, real, now_fn=lambda: at + dt.timedelta(minutes=2)
    )
    assert retry[Outcome.SENT] == 1
    assert _reload(session, first).status is OutboxStatus.SENT
    assert len(sent_to(user)) == 2


def test_a_disabled_user_gets_nothing(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user(disabled=True)
    grant_subscription(user, "queue_called")
    row = enqueue_notification(user)

    drain_at()

    row = _reload(session, row)
    assert row.status is OutboxStatus.SKIPPED and row.last_error_code == "USER_UNAVAILABLE"
    assert sent_to(user) == []


def test_a_closed_send_gate_defers_without_counting_an_attempt(
    session, create_wechat_user, grant_subscription, enqueue_notification, drain_at, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    start = utcnow()
    row = enqueue_notification(user, now=start)

    stats = drain_at(start, gate=lambda: False)

    row = _reload(session, row)
    assert stats[Outcome.DEFERRED] == 1
    assert row.status is OutboxStatus.PENDING and row.attempts == 0
    assert row.next_attempt_at == start + dt.timedelta(seconds=1)
    assert _remaining(session, user.id) == 1

    assert drain_at(start + dt.timedelta(seconds=1), gate=lambda: True)[Outcome.SENT] == 1
    assert len(sent_to(user)) == 1


def test_a_worker_whose_lease_was_taken_over_does_not_send(
    app, session, create_wechat_user, grant_subscription, enqueue_notification, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    start = utcnow()
    row = enqueue_notification(user, now=start)
    factory = app.extensions["db"].sessionmaker

    with factory() as slow:
        (stale,) = outbox.claim_due(slow, now=start, limit=1, lease_seconds=60)
        slow.commit()
        # The slow worker stalls past its lease; another worker claims the row.
        with factory() as fresh:
            reclaimed = outbox.claim_one(
                fresh, row.id, now=start + dt.timedelta(seconds=61), lease_seconds=60
            )
            fresh.commit()
        assert reclaimed is not None
        # It wakes up believing (from its own clock) that its lease still holds.
        outcome = deliver(slow, get_wechat(app), stale, now=start + dt.timedelta(seconds=30))

    assert outcome is Outcome.LOST
    assert sent_to(user) == []
    assert _remaining(session, user.id) == 1
    row = _reload(session, row)
    assert row.status is OutboxStatus.SENDING and row.claim_token == 2


def test_only_the_lease_holder_delivers(
    app, session, create_wechat_user, grant_subscription, enqueue_notification, sent_to
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    start = utcnow()
    enqueue_notification(user, now=start)
    factory = app.extensions["db"].sessionmaker

    with factory() as worker:
        (row,) = outbox.claim_due(worker, now=start, limit=1, lease_seconds=60)
        worker.commit()
        outcome = deliver(worker, get_wechat(app), row, now=start + dt.timedelta(seconds=61))

    assert outcome is Outcome.LOST
    assert sent_to(user) == []

"""The push outbox: exactly once across a killed worker, opt-outs, grants, caps, quiet, rate;
a message notify refuses, and an enterprise that stops qualifying before the send."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.enterprises.models import RegistryEnterprise
from app.integrations.wechat import get_wechat
from app.notify import send_rate
from app.notify.models import NotificationOutbox, OutboxStatus, SubscriptionGrant
from app.policies import profiles, push_drain, push_schedule, service
from app.policies.models import PolicyPush, PushOptOut, PushStatus
from tests.support.database import statements_sent
from wechat.client import SubscribeMessage, WeChatClient
from wechat.errors import SubscriptionRefused, SystemBusy, TransportError, WeChatError

SH = ZoneInfo("Asia/Shanghai")
DAY = dt.datetime(2025, 3, 12, 10, 0, tzinfo=SH).astimezone(dt.UTC)  # a Wednesday, 10:00
SETTINGS = push_schedule.PushSettings(lease_seconds=60)
FORM = {"tags_all": ["出口企业"]}


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except-Exception catches it."""


@pytest.fixture
def recipient(
    session: Session, create_profile: Any, create_wechat_user: Any, bind_enterprise: Any
) -> Any:
    def make(*, granted: bool = True, grant: Any = None) -> tuple[Any, Any]:
        profile = create_profile(tags=["出口企业"])
        user = create_wechat_user()
        bind_enterprise(user, session.get(RegistryEnterprise, profile.enterprise_id))
        if granted:
            grant(user, "policy_push")
        return profile, user

    return make


@pytest.fixture
def publish(session: Session, create_policy: Any) -> Any:
    def run(form: dict[str, Any] = FORM, at: dt.datetime = DAY) -> Any:
        policy = create_policy(form, now=at)
        from app.policies import service

        service.publish(session, policy, staff_id=None, now=at)
        session.flush()
        return policy

    return run


def drain(app: Flask, at: dt.datetime, **kw: Any) -> push_drain.DrainStats:
    return push_drain.drain_once(
        app.extensions["db"].sessionmaker,
        kw.pop("wechat", None) or get_wechat(app),
        now_fn=lambda: at,
        settings=kw.pop("settings", SETTINGS),
        catalog=app.extensions["notify_templates"],
        **kw,
    )


class OneByOne:
    """A fake WeChat for the drain: its batch goes one message at a time through `send`.

    It says the next batch may follow once this one is answered, as a sender in this process
    does; `ready_at_start`: before its first message, as a child-process sender (roughly)."""

    ready_at_start = False

    def send(self, message: SubscribeMessage) -> None:
        raise NotImplementedError

    def send_subscribe_messages(
        self,
        messages: Sequence[SubscribeMessage],
        *,
        connections: int,
        on_ready_for_next: Callable[[], None] | None = None,
    ) -> list[WeChatError | None]:
        if self.ready_at_start and on_ready_for_next is not None:
            on_ready_for_next()
        answers: list[WeChatError | None] = []
        for message in messages:
            try:
                self.send(message)
            except WeChatError as error:
                answers.append(error)
            else:
                answers.append(None)
        if not self.ready_at_start and on_ready_for_next is not None:
            on_ready_for_next()
        return answers


def deliver(wechat: WeChatClient, message: SubscribeMessage) -> None:
    """Send one message through the real client's batch path; raise what WeChat answered."""
    [answer] = wechat.send_subscribe_messages([message], connections=1)
    if answer is not None:
        raise answer


def pushes(session: Session, policy_id: int) -> list[PolicyPush]:
    return list(
        session.scalars(
            select(PolicyPush)
            .where(PolicyPush.policy_id == policy_id)
            .execution_options(populate_existing=True)
        )
    )


def test_a_push_is_sent_once_and_never_again(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    _, user = recipient(grant=grant_subscription)
    policy = publish()
    assert drain(app, DAY).claimed == 1
    assert drain(app, DAY + dt.timedelta(minutes=5)).claimed == 0
    [row] = pushes(session, policy.id)
    assert row.status == PushStatus.SENT
    [message] = sent_to(user)
    assert message["template_id"] == "policy_push"


def test_worker_killed_between_send_and_commit_does_not_send_twice(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    _, user = recipient(grant=grant_subscription)
    policy = publish()
    real = get_wechat(app)

    class DiesAfterSend(OneByOne):
        def send(self, message: SubscribeMessage) -> None:
            deliver(real, message)
            raise WorkerKilled  # WeChat accepted; the process dies before the commit

    with pytest.raises(WorkerKilled):
        drain(app, DAY, wechat=DiesAfterSend())
    assert len(sent_to(user)) == 1
    # Restarted worker, after the dead one's lease: it must not send again.
    drain(app, DAY + dt.timedelta(minutes=2))
    drain(app, DAY + dt.timedelta(minutes=4))
    [row] = pushes(session, policy.id)
    assert row.status == PushStatus.IN_DOUBT
    assert len(sent_to(user)) == 1


def test_worker_killed_before_the_send_is_retried_and_sent_once(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    _, user = recipient(grant=grant_subscription)
    policy = publish()

    real_claim = push_drain.claim_batch

    def dies_before_marker(*args: Any, **kwargs: Any) -> Any:
        real_claim(*args, **kwargs)
        raise WorkerKilled  # claimed and checked, killed before the in-flight commit

    monkeypatch.setattr(push_drain, "claim_batch", dies_before_marker)
    with pytest.raises(WorkerKilled):
        drain(app, DAY)
    monkeypatch.undo()
    assert sent_to(user) == []
    drain(app, DAY + dt.timedelta(minutes=2))
    [row] = pushes(session, policy.id)
    assert (row.status, row.attempts) == (PushStatus.SENT, 1)
    assert len(sent_to(user)) == 1


def test_a_batch_sent_concurrently_once_and_a_dead_batch_is_in_doubt(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    users = [recipient(grant=grant_subscription)[1] for _ in range(6)]
    policy = publish()
    real = get_wechat(app)
    calls: list[str] = []

    class DiesAfterThird(OneByOne):
        def send(self, message: SubscribeMessage) -> None:
            calls.append(message.touser)
            if len(calls) <= 3:
                deliver(real, message)
            if len(calls) == 3:
                raise WorkerKilled

    small = push_schedule.PushSettings(lease_seconds=60, batch=6)
    with pytest.raises(WorkerKilled):
        drain(app, DAY, wechat=DiesAfterThird(), settings=small)
    assert sum(len(sent_to(user)) for user in users) == 3
    stats = drain(app, DAY + dt.timedelta(minutes=2), settings=small)
    assert stats.claimed == 0  # the dead batch is settled, never resent
    statuses = [row.status for row in pushes(session, policy.id)]
    assert statuses == [PushStatus.IN_DOUBT] * 6
    assert sum(len(sent_to(user)) for user in users) == 3


def test_a_claim_goes_out_a_batch_at_a_time_and_a_dead_worker_leaves_one_batch_in_doubt(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    users = {
        user.openid: user for user in (recipient(grant=grant_subscription)[1] for _ in range(6))
    }
    policy = publish()
    real = get_wechat(app)
    batches: list[list[str]] = []

    class DiesInSecondBatch:
        """Delivers the first batch; in the second, one message, then the worker dies."""

        def send_subscribe_messages(
            self,
            messages: Sequence[SubscribeMessage],
            *,
            connections: int,
            on_ready_for_next: Callable[[], None] | None = None,
        ) -> list[WeChatError | None]:
            batches.append([message.touser for message in messages])
            deliver(real, messages[0])
            if len(batches) == 2:
                raise WorkerKilled
            for message in messages[1:]:
                deliver(real, message)
            return [None] * len(messages)

    # One claim of six, sent two at a time.
    claims = push_schedule.PushSettings(lease_seconds=60, batch=2, claim=6)
    with pytest.raises(WorkerKilled):
        drain(app, DAY, wechat=DiesInSecondBatch(), settings=claims)
    assert [len(batch) for batch in batches] == [2, 2]
    first, second = ({users[openid].id for openid in batch} for batch in batches)
    by_user = {row.user_id: row for row in pushes(session, policy.id)}
    assert {user_id for user_id, row in by_user.items() if row.status is PushStatus.SENT} == first
    assert {
        user_id for user_id, row in by_user.items() if row.status is PushStatus.IN_FLIGHT
    } == second
    # The third batch was claimed (its attempts' rows held, its authorisations taken), not sent.
    held = {user_id for user_id, row in by_user.items() if row.status is PushStatus.CLAIMED}
    assert len(held) == 2 and not held & (first | second)

    # After the lease: the batch on the wire is in doubt; the claimed one goes, once.
    stats = drain(app, DAY + dt.timedelta(minutes=2), settings=claims)
    assert stats.claimed == 2
    outcome = {row.user_id: (row.status, row.attempts) for row in pushes(session, policy.id)}
    assert outcome == (
        {user_id: (PushStatus.SENT, 1) for user_id in first}
        | {user_id: (PushStatus.IN_DOUBT, 1) for user_id in second}
        | {user_id: (PushStatus.SENT, 2) for user_id in held}
    )
    received = {openid: len(sent_to(user)) for openid, user in users.items()}
    assert sorted(received.values()) == [0, 1, 1, 1, 1, 1]  # the dead batch's second: never
    lost = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.last_error_code == "WORKER_LOST")
        .execution_options(populate_existing=True)
    ).all()
    # The held attempts were closed and their authorisations given back, then taken again.
    assert {(row.user_id, row.status, row.grant_reserved) for row in lost} == {
        (user_id, OutboxStatus.FAILED, False) for user_id in held
    }
    grants = session.scalars(
        select(SubscriptionGrant)
        .where(SubscriptionGrant.user_id.in_(held))
        .execution_options(populate_existing=True)
    ).all()
    assert [grant.one_time_remaining for grant in grants] == [0, 0]


def test_a_claim_that_ran_out_is_not_sent_by_its_stalled_worker(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # A worker claims, then stalls before its batch's turn past the claim's lease: another
    # worker puts the pushes back and sends them; the stalled one must not mark or send them.
    users = [recipient(grant=grant_subscription)[1] for _ in range(2)]
    policy = publish()
    sessions = app.extensions["db"].sessionmaker
    catalog = app.extensions["notify_templates"]
    with sessions() as stalled:
        _, claimed = push_drain.claim_batch(
            stalled, now=DAY, settings=SETTINGS, limit=5, catalog=catalog
        )
        stalled.commit()
    assert len(claimed) == 2
    later = DAY + dt.timedelta(minutes=2)
    with sessions() as recovery:
        assert push_drain.recover(recovery, now=later)["requeued"] == 2
        recovery.commit()
    with sessions() as stalled:  # put back, not yet claimed again: the status guards
        assert push_drain.take_off(stalled, claimed, now=later, settings=SETTINGS) == []
        stalled.commit()
    assert drain(app, later).claimed == 2
    with sessions() as stalled:  # claimed again, and sent: the claim token guards
        assert push_drain.take_off(stalled, claimed, now=later, settings=SETTINGS) == []
        stalled.commit()
    assert [(row.status, row.attempts) for row in pushes(session, policy.id)] == [
        (PushStatus.SENT, 2)
    ] * 2
    assert [len(sent_to(user)) for user in users] == [1, 1]


def test_the_turn_passes_on_when_the_sender_can_take_the_next_batch(
    app: Flask, recipient: Any, grant_subscription: Any, publish: Any
) -> None:
    # Drains sharing a turn: held while a batch is handed over, released as soon as the
    # sender says the next may follow (a child-process sender: once this one has started),
    # not only when the batch is answered.
    for _ in range(2):
        recipient(grant=grant_subscription)
    publish()
    turn = threading.Lock()
    held_at_hand_over: list[bool] = []
    held_while_sending: list[bool] = []

    class ReadyAtStart(OneByOne):
        ready_at_start = True

        def send_subscribe_messages(
            self, messages: Sequence[SubscribeMessage], **options: Any
        ) -> list[WeChatError | None]:
            held_at_hand_over.append(turn.locked())
            return super().send_subscribe_messages(messages, **options)

        def send(self, message: SubscribeMessage) -> None:
            held_while_sending.append(turn.locked())

    one_at_a_time = push_schedule.PushSettings(lease_seconds=60, batch=1, claim=2)
    stats = drain(app, DAY, wechat=ReadyAtStart(), settings=one_at_a_time, send_lock=turn)
    assert stats.claimed == 2
    assert held_at_hand_over == [True, True]
    assert held_while_sending == [False, False]
    assert not turn.locked()


def test_a_batch_call_that_fails_midway_leaves_its_pushes_in_doubt(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    users = [recipient(grant=grant_subscription)[1] for _ in range(3)]
    policy = publish()
    real = get_wechat(app)

    class FailsAfterFirst:
        """Sends one message, then raises for the whole batch (an error WeChat could send)."""

        def send_subscribe_messages(
            self,
            messages: Sequence[SubscribeMessage],
            *,
            connections: int,
            on_ready_for_next: Callable[[], None] | None = None,
        ) -> list[WeChatError | None]:
            deliver(real, messages[0])
            raise SystemBusy(-1, "system error")

    assert drain(app, DAY, wechat=FailsAfterFirst()).claimed == 3
    statuses = [row.status for row in pushes(session, policy.id)]
    assert statuses == [PushStatus.IN_DOUBT] * 3
    assert drain(app, DAY + dt.timedelta(minutes=5)).claimed == 0
    assert sorted(len(sent_to(user)) for user in users) == [0, 0, 1]


def test_batch_outcomes_follow_wechat_answers(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    users = [recipient(grant=grant_subscription)[1] for _ in range(4)]
    policy = publish()
    real = get_wechat(app)
    openids = [user.openid for user in users]

    class Mixed(OneByOne):
        def send(self, message: SubscribeMessage) -> None:
            index = openids.index(message.touser)
            if index == 1:
                raise TransportError("reset", maybe_processed=True)
            if index == 2:
                raise TransportError("refused", maybe_processed=False)
            if index == 3:
                raise SubscriptionRefused(43101, "user refuse to accept the msg")
            deliver(real, message)

    stats = drain(app, DAY, wechat=Mixed())
    assert stats.claimed == 4
    by_user = {row.user_id: row for row in pushes(session, policy.id)}
    outcome = [(by_user[u.id].status, by_user[u.id].reason) for u in users]
    assert outcome == [
        (PushStatus.SENT, None),
        (PushStatus.IN_DOUBT, "MAYBE_PROCESSED"),
        (PushStatus.WAITING, "TransportError"),
        (PushStatus.SKIPPED, "43101"),
    ]
    assert by_user[users[2].id].due_at == DAY + dt.timedelta(seconds=60)
    # The retry is a new attempt with a notification row of its own, sent once.
    drain(app, DAY + dt.timedelta(minutes=2))
    retried = pushes(session, policy.id)
    assert {r.user_id: (r.status, r.attempts) for r in retried}[users[2].id] == (
        PushStatus.SENT,
        2,
    )
    assert [len(sent_to(u)) for u in users] == [1, 0, 1, 0]


def test_outcomes_after_recovery_settled_the_batch_change_nothing(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
) -> None:
    # A worker stalled past its lease: recovery settles its batch IN_DOUBT, and the worker's
    # late answers (accepted or not) must leave the pushes and their notification rows as
    # recovery left them: each batch UPDATE is guarded by status and claim token.
    for _ in range(3):
        recipient(grant=grant_subscription)
    policy = publish()
    sessions = app.extensions["db"].sessionmaker
    with sessions() as stalled:
        _, sends = push_drain.claim_batch(
            stalled,
            now=DAY,
            settings=SETTINGS,
            limit=5,
            catalog=app.extensions["notify_templates"],
        )
        sends = push_drain.take_off(stalled, sends, now=DAY, settings=SETTINGS)
        stalled.commit()
    assert len(sends) == 3
    later = DAY + dt.timedelta(minutes=2)
    with sessions() as recovery:
        assert push_drain.recover(recovery, now=later)["in_doubt"] == 3
        recovery.commit()
    with sessions() as stalled:
        push_drain.record_outcomes(
            stalled,
            sends,
            [None, None, TransportError("refused", maybe_processed=False)],
            now=later,
            settings=SETTINGS,
        )
        stalled.commit()
    rows = pushes(session, policy.id)
    assert [(row.status, row.reason, row.sent_at) for row in rows] == [
        (PushStatus.IN_DOUBT, "WORKER_DIED_DURING_SEND", None)
    ] * 3
    notifications = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.id.in_([send.notification_id for send in sends]))
        .execution_options(populate_existing=True)
    ).all()
    assert [(row.status, row.sent_at) for row in notifications] == [(OutboxStatus.FAILED, None)] * 3


def test_a_batch_or_claim_size_of_zero_still_sends(
    app: Flask, recipient: Any, grant_subscription: Any, publish: Any, sent_to: Any
) -> None:
    _, user = recipient(grant=grant_subscription)
    publish()
    settings = push_schedule.PushSettings.from_config(
        {"POLICY_PUSH_BATCH": 0, "POLICY_PUSH_CLAIM": 0, "POLICY_PUSH_QUIET_HOURS": "00:00-00:00"}
    )
    assert (settings.batch, settings.claim_size) == (1, 1)
    assert drain(app, DAY, settings=settings).claimed == 1
    assert len(sent_to(user)) == 1


def test_send_rate_is_taken_before_the_claim() -> None:
    bucket = send_rate.TokenBucket(rate=1000, burst=3)
    assert send_rate.take_slots(bucket, 50).count == 3
    assert send_rate.take_slots(None, 50).count == 50


def test_slots_a_short_claim_did_not_use_go_back_to_the_send_rate(
    app: Flask, recipient: Any, grant_subscription: Any, publish: Any, sent_to: Any
) -> None:
    # WeChat's quota is one for the account, shared with citizens' notifications. A drain takes
    # its slots before it claims; those a short claim left unused were kept, so a drain that
    # found one push due (or none: each delayed follow-up, each poll) spent the whole window
    # and a citizen's notice waited behind it.
    _, user = recipient(grant=grant_subscription)
    publish()
    gate = send_rate.TokenBucket(rate=0.001, burst=10)
    whole_window = push_schedule.PushSettings(lease_seconds=60, send_rate_reserved=0)
    stats = drain(app, DAY, gate=gate, settings=whole_window)
    assert (stats.limit, stats.claimed) == (10, 1)
    assert len(sent_to(user)) == 1
    assert gate.take(10) == 9

    idle = send_rate.TokenBucket(rate=0.001, burst=10)
    assert drain(app, DAY, gate=idle, settings=whole_window).taken == 0
    assert idle.take(10) == 10


def test_opted_out_and_unauthorised_recipients_are_skipped_with_reason(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    profile, opted = recipient(grant=grant_subscription)
    session.add(PushOptOut(user_id=opted.id, enterprise_id=profile.enterprise_id, created_at=DAY))
    _, no_grant = recipient(granted=False, grant=grant_subscription)
    policy = publish()
    drain(app, DAY)
    reasons = {row.user_id: (row.status, row.reason) for row in pushes(session, policy.id)}
    assert reasons[opted.id] == (PushStatus.SKIPPED, "OPTED_OUT")
    assert reasons[no_grant.id] == (PushStatus.SKIPPED, "NO_SUBSCRIPTION")
    assert sent_to(opted) == [] and sent_to(no_grant) == []


def test_quiet_hours_hold_pushes_until_eight(
    app: Flask, session: Session, recipient: Any, grant_subscription: Any, publish: Any
) -> None:
    recipient(grant=grant_subscription)
    evening = dt.datetime(2025, 3, 12, 22, 30, tzinfo=SH).astimezone(dt.UTC)
    policy = publish(at=evening)
    assert drain(app, evening).claimed == 0
    [row] = pushes(session, policy.id)
    assert (row.status, row.reason) == (PushStatus.WAITING, "QUIET_HOURS")
    assert row.due_at == dt.datetime(2025, 3, 13, 8, 0, tzinfo=SH)


def test_one_policy_a_day_per_enterprise(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    _, user = recipient(grant=grant_subscription)
    grant_subscription(user, "policy_push")
    first, second = publish(), publish({"tags_all": ["出口企业"], "article": "第二条"})
    drain(app, DAY)
    [a], [b] = pushes(session, first.id), pushes(session, second.id)
    assert a.status == PushStatus.SENT
    assert (b.status, b.reason) == (PushStatus.WAITING, "FREQUENCY_CAP")
    assert b.due_at == dt.datetime(2025, 3, 13, 8, 0, tzinfo=SH)
    drain(app, dt.datetime(2025, 3, 13, 8, 1, tzinfo=SH).astimezone(dt.UTC))
    assert pushes(session, second.id)[0].status == PushStatus.SENT
    assert len(sent_to(user)) == 2


def test_weekly_cap_counts_distinct_policies(
    session: Session, recipient: Any, grant_subscription: Any, publish: Any
) -> None:
    profile, _user = recipient(grant=grant_subscription)
    settings = push_schedule.PushSettings(per_day=10, per_week=3)
    for offset in range(3):
        policy = publish()
        session.execute(
            update(PolicyPush)
            .where(PolicyPush.policy_id == policy.id)
            .values(released_at=DAY - dt.timedelta(days=offset), status=PushStatus.SENT)
        )
    fourth = publish()
    until = push_schedule.cap_until(session, profile.enterprise_id, fourth.id, DAY, settings)
    # The oldest release (two days ago) leaves the seven-day window five days from now.
    assert until == dt.datetime(2025, 3, 17, 0, 0, tzinfo=SH)


def test_token_bucket_is_one_limit_for_all_threads() -> None:
    gate = send_rate.TokenBucket(rate=100, burst=10)
    granted: list[tuple[float, float]] = []  # (before the call, after it) of each token
    lock = threading.Lock()

    def worker() -> None:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            before = time.monotonic()
            if gate():
                after = time.monotonic()
                with lock:
                    granted.append((before, after))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One window for everyone, measured around the grants themselves (a thread's own timer
    # starts late under load): a bucket grants at most burst + rate x window in it.
    window = max(after for _, after in granted) - min(before for before, _ in granted)
    assert len(granted) <= 10 + 100 * window
    assert len(granted) >= 10  # the burst at least: the gate does grant


def test_redis_send_rate_is_shared_by_workers(app: Flask) -> None:
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    settings = push_schedule.PushSettings(
        redis_url=url, namespace=f"test-policy-{time.time_ns()}", send_rate_limit=5,
        send_rate_window_seconds=60,
    )  # fmt: skip
    first, second = send_rate.make_gate(settings), send_rate.make_gate(settings)
    acquired = sum(gate() for gate in (first, second) * 5)
    assert acquired == 5


def test_a_batch_costs_the_same_statements_whatever_its_size(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    users = [recipient(grant=grant_subscription)[1] for _ in range(8)]
    policy = publish()
    per_batch = []
    with statements_sent(app.extensions["db"].engine) as statements:
        for batch in (2, 6):
            statements.clear()
            stats = drain(
                app,
                DAY,
                settings=push_schedule.PushSettings(lease_seconds=60, batch=batch, claim=batch),
            )
            assert stats.claimed == batch
            per_batch.append(len(statements))
    # Set-based: nothing is read or written per push (the ORM would write each attempt's
    # notification row in an UPDATE of its own, twice).
    assert per_batch[0] == per_batch[1]
    assert {row.status for row in pushes(session, policy.id)} == {PushStatus.SENT}
    attempts = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.source_type == "policy_push")
        .execution_options(populate_existing=True)
    ).all()
    assert [(row.status, row.grant_reserved, row.sent_at) for row in attempts] == [
        (OutboxStatus.SENT, True, DAY)
    ] * 8
    grants = session.scalars(
        select(SubscriptionGrant)
        .where(SubscriptionGrant.user_id.in_([user.id for user in users]))
        .execution_options(populate_existing=True)
    ).all()
    assert [grant.one_time_remaining for grant in grants] == [0] * 8
    assert [len(sent_to(user)) for user in users] == [1] * 8


def test_the_batches_of_one_claim_cost_a_few_statements_each(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
) -> None:
    for _ in range(12):
        recipient(grant=grant_subscription)
    publish()
    counts = []
    with statements_sent(app.extensions["db"].engine) as statements:
        for claim in (2, 4, 6):  # 12 pushes in all: one, two and three batches of two
            statements.clear()
            settings = push_schedule.PushSettings(lease_seconds=60, batch=2, claim=claim)
            assert drain(app, DAY, settings=settings).claimed == claim
            counts.append(len(statements))
    # Each further batch: its take-off and its outcome's statements, not a claim's.
    per_batch = counts[1] - counts[0]
    assert counts[2] - counts[1] == per_batch
    assert per_batch * 2 < counts[0]


def test_token_bucket_gives_many_slots_at_once() -> None:
    bucket = send_rate.TokenBucket(rate=0.001, burst=5)
    assert [bucket.take(3), bucket.take(3), bucket.take(3)] == [3, 2, 0]
    assert not bucket()


def test_an_attempt_row_already_there_is_claimed_the_general_way(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # The attempt's notification row exists before the attempt (left pending by an older
    # worker version): it is claimed and checked as notify would, and sent once, not inserted.
    from app.notify import outbox

    _, user = recipient(grant=grant_subscription)
    policy = publish()
    [push] = pushes(session, policy.id)
    key = f"policy-push:{push.id}:1"
    outbox.enqueue_many(
        session,
        [
            {
                "user_id": user.id,
                "template_key": "policy_push",
                "data": {"thing1": "旧", "thing2": "局", "thing3": "长期有效", "thing4": "旧"},
                "dedupe_key": key,
            }
        ],
        now=DAY,
    )
    session.commit()

    assert drain(app, DAY).claimed == 1

    [push] = pushes(session, policy.id)
    assert push.status == PushStatus.SENT
    row = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.dedupe_key == key)
        .execution_options(populate_existing=True)
    ).one()
    assert row.id == push.notification_id and row.status is OutboxStatus.SENT
    assert len(sent_to(user)) == 1


def test_the_push_says_how_long_a_policy_runs_and_never_makes_up_a_deadline(
    app: Flask, recipient: Any, grant_subscription: Any, create_policy: Any, sent_to: Any
) -> None:
    # The message's third field was 申报截止, a date, and a policy with no end date was pushed
    # with 31 December of the year it went out: a deadline no department set, three weeks
    # away for a push in December. It is now 有效期: until the policy's last day, or 长期有效.
    _, user = recipient(grant=grant_subscription)
    create_policy(FORM, publish=True, now=DAY)
    drain(app, DAY)
    grant_subscription(user, "policy_push")  # a one-time authorisation per message
    later = DAY + dt.timedelta(days=8)
    create_policy(FORM, publish=True, now=later, expires_on=dt.date(2025, 6, 30))
    drain(app, later)

    periods = [message["data"]["thing3"] for message in sent_to(user)]
    assert periods == ["长期有效", "至2025年6月30日"]
    assert all("date3" not in message["data"] for message in sent_to(user))


def test_a_push_drain_leaves_part_of_each_window_to_citizens_notifications(
    app: Flask, recipient: Any, grant_subscription: Any, publish: Any
) -> None:
    # A push drain's loops ask for slots every 5 ms and took every free one the moment a window
    # opened, so for as long as a large push lasted a citizen's notice (a number called at a
    # window) found the rate used up, window after window.
    for _ in range(12):
        recipient(grant=grant_subscription)
    publish()
    gate = send_rate.TokenBucket(rate=0.001, burst=10)
    settings = push_schedule.PushSettings(
        lease_seconds=60, send_rate_limit=10, send_rate_reserved=3
    )
    assert drain(app, DAY, gate=gate, settings=settings).claimed == 7
    assert [gate() for _ in range(4)] == [True, True, True, False]


def test_a_push_whose_message_would_be_refused_fails_alone_and_the_others_go_out(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # Notify refuses a message with a mobile or ID number in a field, and the push carries the
    # summary's first 20 characters. A policy stored with a hotline there (before create, edit
    # and publish checked it) made the whole claim raise: every drain rolled back and took the
    # same oldest pushes first, so no enterprise received any policy push again.
    users = [recipient(grant=grant_subscription)[1] for _ in range(2)]
    hotline = publish()
    hotline.summary = "咨询热线13926012345，符合条件的出口企业可获保费支持"
    session.flush()
    other = publish({"tags_all": ["出口企业"], "article": "第二条"})

    assert drain(app, DAY).claimed == 2

    assert [(row.status, row.reason) for row in pushes(session, hotline.id)] == [
        (PushStatus.FAILED, "PERSONAL_DATA_IN_MESSAGE")
    ] * 2
    # Refused before it was released: the day's one push per enterprise is still the other's.
    assert [row.status for row in pushes(session, other.id)] == [PushStatus.SENT] * 2
    assert [[m["data"]["thing1"] for m in sent_to(user)] for user in users] == [[other.title]] * 2
    assert drain(app, DAY + dt.timedelta(minutes=5)).taken == 0


# -- an enterprise that no longer qualifies ------------------------------------------------------


NIGHT = dt.datetime(2025, 3, 12, 22, 0, tzinfo=SH).astimezone(dt.UTC)
MORNING = dt.datetime(2025, 3, 13, 8, 5, tzinfo=SH).astimezone(dt.UTC)


def set_tags(session: Session, profile: Any, tags: list[str] | None, at: dt.datetime) -> None:
    """The department's data feed reports the enterprise's qualifications (re-matched)."""
    profiles.update_profile(session, profile, {"tags": tags}, source="import", user_id=None, now=at)
    session.flush()


def test_a_push_waiting_out_the_quiet_hours_is_cancelled_when_the_enterprise_stops_qualifying(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # Published at 22:00, the push waits until 08:00. At 23:00 the feed says the enterprise is
    # no longer an exporter: its match went, its push stayed, and at 08:00 it was told a policy
    # it no longer qualifies for was for it.
    profile, user = recipient(grant=grant_subscription)
    policy = publish(at=NIGHT)
    assert drain(app, NIGHT).claimed == 0

    set_tags(session, profile, [], NIGHT + dt.timedelta(hours=1))

    [row] = pushes(session, policy.id)
    assert (row.status, row.reason) == (PushStatus.CANCELLED, "NO_LONGER_ELIGIBLE")
    assert drain(app, MORNING).taken == 0
    assert sent_to(user) == []


def test_a_push_is_cancelled_when_the_enterprise_only_may_qualify(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # Pushes go to eligible enterprises only; one that may qualify (a fact no longer known)
    # sees the policy in its feed as 可能符合, and gets no "you qualify" message.
    profile, user = recipient(grant=grant_subscription)
    policy = publish(at=NIGHT)
    drain(app, NIGHT)

    set_tags(session, profile, None, NIGHT + dt.timedelta(hours=1))

    [row] = pushes(session, policy.id)
    assert (row.status, row.reason) == (PushStatus.CANCELLED, "NO_LONGER_ELIGIBLE")
    drain(app, MORNING)
    assert sent_to(user) == []


def test_an_enterprise_that_qualifies_again_before_the_send_gets_its_push_once(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # A feed that drops a tag by mistake and restores it overnight: the cancelled push waits
    # again (a push is unique per policy and recipient, so no new one could be made).
    profile, user = recipient(grant=grant_subscription)
    policy = publish(at=NIGHT)
    drain(app, NIGHT)
    set_tags(session, profile, [], NIGHT + dt.timedelta(hours=1))

    set_tags(session, profile, ["出口企业"], NIGHT + dt.timedelta(hours=2))

    assert [row.status for row in pushes(session, policy.id)] == [PushStatus.WAITING]
    assert drain(app, MORNING).claimed == 1
    assert drain(app, MORNING + dt.timedelta(minutes=5)).claimed == 0
    assert [m["data"]["thing1"] for m in sent_to(user)] == [policy.title]


def test_a_push_held_by_the_frequency_cap_is_cancelled_when_an_edit_narrows_the_criteria(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
) -> None:
    # Two enterprises had today's push; the second policy waits for tomorrow. The officer then
    # narrows it to high-tech exporters: the enterprise left out must not get it tomorrow.
    _, dropped = recipient(grant=grant_subscription)
    kept_profile, kept = recipient(grant=grant_subscription)
    set_tags(session, kept_profile, ["出口企业", "高新技术企业"], DAY)
    for user in (dropped, kept):
        grant_subscription(user, "policy_push")
    publish()
    second = publish({"tags_all": ["出口企业"], "article": "第二条"})
    drain(app, DAY)
    assert {(row.status, row.reason) for row in pushes(session, second.id)} == {
        (PushStatus.WAITING, "FREQUENCY_CAP")
    }

    narrowed = service.parse_input_criteria(
        {"criteria_form": {"tags_all": ["出口企业", "高新技术企业"]}}, second.doc_number
    )
    later = DAY + dt.timedelta(hours=2)
    service.edit_policy(session, second, fields={}, criteria=narrowed, staff_id=None, now=later)
    session.flush()

    by_user = {row.user_id: (row.status, row.reason) for row in pushes(session, second.id)}
    assert by_user == {
        dropped.id: (PushStatus.CANCELLED, "NO_LONGER_ELIGIBLE"),
        kept.id: (PushStatus.WAITING, "FREQUENCY_CAP"),
    }
    drain(app, MORNING)
    assert [len(sent_to(user)) for user in (dropped, kept)] == [1, 2]


def test_a_push_waiting_out_the_quiet_hours_is_cancelled_when_the_registry_cancels_the_company(
    app: Flask,
    session: Session,
    recipient: Any,
    grant_subscription: Any,
    publish: Any,
    sent_to: Any,
    field_cipher: Any,
) -> None:
    # 注销 overnight: the company no longer exists to apply. Before, the registry load changed
    # its status and nothing else: its matches stayed, and at 08:00 it was told it qualified.
    from app.enterprises.registry import load_registry

    profile, user = recipient(grant=grant_subscription)
    policy = publish(at=NIGHT)
    drain(app, NIGHT)
    enterprise = session.get(RegistryEnterprise, profile.enterprise_id)
    row = {
        "uscc": enterprise.uscc,
        "name": enterprise.name,
        "legal_rep_name": enterprise.legal_rep_name,
        "status": "注销",
        "registered_town": enterprise.registered_town,
        "established_on": enterprise.established_on.isoformat(),
    }

    load_registry(session, [row], cipher=field_cipher, now=NIGHT + dt.timedelta(hours=1))

    [push] = pushes(session, policy.id)
    assert (push.status, push.reason) == (PushStatus.CANCELLED, "NO_LONGER_ELIGIBLE")
    drain(app, MORNING)
    assert sent_to(user) == []

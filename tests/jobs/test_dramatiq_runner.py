"""The distributed runner: a real Redis broker and a Dramatiq worker started in the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from flask import Flask

from app.db import get_session
from app.jobs import dispatch
from app.jobs.dramatiq_broker import DramatiqRunner
from app.notify import send_rate
from app.notify.models import NotificationOutbox, OutboxStatus
from app.policies.push_schedule import PushSettings
from tests.support.jobs import (
    REDIS_URL,
    build_app,
    commit_notification,
    granted_user,
    messages_for,
    needs_redis,
    row_status,
    wait_for,
)

pytestmark = needs_redis


@pytest.fixture
def namespace() -> Iterator[str]:
    """Redis keys of this test only; removed afterwards."""
    name = f"test-notify-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)


def _dramatiq_app(app: Flask, folder: Path, namespace: str, **settings: object) -> Flask:
    """An app on the Dramatiq runner, its Redis keys under `namespace`."""
    return build_app(
        app,
        folder,
        JOB_RUNNER="dramatiq",
        REDIS_URL=REDIS_URL,
        DRAMATIQ_NAMESPACE=namespace,
        # The ticker sweeps when the worker boots, then not again during a test.
        NOTIFY_SWEEP_SECONDS=3600,
        **settings,
    )


@pytest.fixture
def dramatiq_app(app: Flask, tmp_path: Path, namespace: str) -> Flask:
    return _dramatiq_app(app, tmp_path, namespace)


def _runner(app: Flask) -> DramatiqRunner:
    runner = app.extensions["jobs"]
    assert isinstance(runner, DramatiqRunner)
    return runner


@pytest.fixture
def start_worker(dramatiq_app: Flask) -> Iterator[object]:
    workers: list[dramatiq.Worker] = []

    def start() -> dramatiq.Worker:
        worker = dramatiq.Worker(_runner(dramatiq_app).broker, worker_threads=2, worker_timeout=100)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def test_a_committed_notification_is_delivered_by_a_dramatiq_worker(
    dramatiq_app, start_worker, emulator_url, namespace
):
    user = granted_user(dramatiq_app, emulator_url)
    start_worker()
    # Let the boot-time sweep run on an empty outbox, so only the commit's message can deliver.
    ticked = redis.Redis.from_url(REDIS_URL).exists
    assert wait_for(lambda: bool(ticked(f"{namespace}:outbox-sweep-tick")))
    _runner(dramatiq_app).broker.join("notify", timeout=5_000)

    row_id = commit_notification(dramatiq_app, user)

    assert wait_for(lambda: len(messages_for(emulator_url, user)) == 1, timeout=10)
    assert wait_for(lambda: row_status(dramatiq_app, row_id) == "sent", timeout=2)


def test_a_notification_whose_message_was_lost_is_delivered_by_the_sweep(
    dramatiq_app, start_worker, emulator_url
):
    user = granted_user(dramatiq_app, emulator_url)
    factory = dramatiq_app.extensions["db"].sessionmaker
    runner = _runner(dramatiq_app)
    # Redis was down when the request committed: the message never left.
    dispatch.install(factory, lambda kind, ids: None)
    try:
        row_id = commit_notification(dramatiq_app, user)
    finally:
        dispatch.install(factory, runner.dispatch)
    assert row_status(dramatiq_app, row_id) == "pending"

    start_worker()  # its ticker enqueues a sweep at boot

    assert wait_for(lambda: row_status(dramatiq_app, row_id) == "sent", timeout=10)
    assert len(messages_for(emulator_url, user)) == 1


def test_only_one_worker_per_interval_enqueues_the_sweep(dramatiq_app, app, tmp_path, namespace):
    other = _dramatiq_app(app, tmp_path / "other", namespace)

    elected = [_runner(dramatiq_app).sweep_if_elected(), _runner(other).sweep_if_elected()]

    assert elected == [True, False]


def test_the_wechat_send_rate_is_one_limit_shared_by_every_worker(
    app, tmp_path: Path, namespace: str
):
    def runner_in(folder: str) -> DramatiqRunner:
        built = _dramatiq_app(
            app,
            tmp_path / folder,
            namespace,
            NOTIFY_SEND_RATE_LIMIT=3,
            NOTIFY_SEND_RATE_WINDOW_SECONDS=60,
        )
        return _runner(built)

    first, second = runner_in("a"), runner_in("b")

    granted = [
        first.acquire_send_slot(),
        second.acquire_send_slot(),
        first.acquire_send_slot(),
        second.acquire_send_slot(),
        first.acquire_send_slot(),
    ]

    assert granted == [True, True, True, False, False]


def _push_worker_gate(runner: DramatiqRunner, namespace: str) -> send_rate.RedisWindowSlots:
    """The send rate as another worker process's push drain builds it: ten a minute."""
    gate = send_rate.make_gate(
        PushSettings(
            redis_url=runner.settings.redis_url,
            namespace=namespace,
            send_rate_limit=10,
            send_rate_window_seconds=60,
        )
    )
    assert isinstance(gate, send_rate.RedisWindowSlots)
    return gate


def test_a_push_batch_and_the_notification_workers_share_one_send_rate(
    app, tmp_path: Path, namespace: str
):
    """WeChat's quota is one for the account: a push batch's slots and a notification
    worker's single slots come out of the same window."""
    built = _dramatiq_app(
        app, tmp_path, namespace, NOTIFY_SEND_RATE_LIMIT=10, NOTIFY_SEND_RATE_WINDOW_SECONDS=60
    )
    runner = _runner(built)
    push_gate = _push_worker_gate(runner, namespace)

    assert push_gate.take(4) == 4
    assert [runner.acquire_send_slot() for _ in range(3)] == [True, True, True]
    assert push_gate.take(50) == 3
    assert (runner.acquire_send_slot(), push_gate.take(1), push_gate()) == (False, 0, False)


def test_slots_a_push_batch_gives_back_are_the_notification_workers_again(
    app, tmp_path: Path, namespace: str
):
    """A short push batch returns what it did not use to the window it took them from, never
    more than that window's counter holds (a give-back cannot make room beyond the limit)."""
    built = _dramatiq_app(
        app, tmp_path, namespace, NOTIFY_SEND_RATE_LIMIT=10, NOTIFY_SEND_RATE_WINDOW_SECONDS=60
    )
    runner = _runner(built)
    push_gate = _push_worker_gate(runner, namespace)

    slots = send_rate.take_slots(push_gate, 200)
    assert slots.count == 10
    assert not runner.acquire_send_slot()
    send_rate.give_back(push_gate, slots, used=7)
    assert [runner.acquire_send_slot() for _ in range(4)] == [True, True, True, False]

    # Asked to give back more than its window's counter holds, it stops at zero: the window
    # never grants more than its limit.
    send_rate.give_back(push_gate, slots, used=0)
    assert sum(runner.acquire_send_slot() for _ in range(20)) == 10


def test_over_the_send_rate_a_message_waits_in_the_broker_without_touching_its_row(
    app, tmp_path: Path, namespace: str, emulator_url: str, monkeypatch
):
    # Taking the slot after the claim cost, for every message over the rate, a claim, a
    # reschedule and a commit, again each second while the backlog lasted (the worker was 40-50 %
    # of the CPU in the instant-approval bench). The slot is now taken first, as the policy
    # push takes its slots: over the rate the message is sent again with a delay, the row
    # untouched.
    built = _dramatiq_app(
        app, tmp_path, namespace, NOTIFY_SEND_RATE_LIMIT=1, NOTIFY_SEND_RATE_WINDOW_SECONDS=60
    )
    runner = _runner(built)
    user = granted_user(built, emulator_url)
    row_id = commit_notification(built, user)
    assert runner.acquire_send_slot()  # the window's one slot is gone
    sent_again: list[tuple[tuple[int, ...], int]] = []
    monkeypatch.setattr(
        runner.deliver_notification,
        "send_with_options",
        lambda *, args, delay: sent_again.append((args, delay)),
    )

    with built.app_context():
        runner.deliver_notification.fn(row_id)

    with built.app_context():
        row = get_session().get(NotificationOutbox, row_id)
        assert row is not None
        assert (row.status, row.attempts, row.claim_token) == (OutboxStatus.PENDING, 0, 0)
    [(args, delay)] = sent_again
    assert args == (row_id,) and delay > 0
    assert messages_for(emulator_url, user) == []


def test_an_idle_worker_asks_redis_for_messages_at_least_every_idle_poll(app, tmp_path, namespace):
    # Dramatiq's consumer backs off up to the worker's timeout (a second as the CLI starts it):
    # a message sent to an idle worker waited that long before its actor started.
    default = _runner(_dramatiq_app(app, tmp_path / "default", namespace)).broker
    assert default.consume("notify", timeout=1_000).timeout == 100
    tuned = _dramatiq_app(app, tmp_path / "tuned", namespace, JOB_IDLE_POLL_MS=30)
    assert _runner(tuned).broker.consume("notify", timeout=1_000).timeout == 30
    # A worker asking for a shorter wait still gets it.
    assert default.consume("notify", timeout=50).timeout == 50


def test_a_push_batch_takes_a_window_only_down_to_what_it_leaves_to_notifications(
    app, tmp_path: Path, namespace: str
):
    built = _dramatiq_app(
        app, tmp_path, namespace, NOTIFY_SEND_RATE_LIMIT=10, NOTIFY_SEND_RATE_WINDOW_SECONDS=60
    )
    runner = _runner(built)
    push_gate = _push_worker_gate(runner, namespace)

    slots = send_rate.take_slots(push_gate, 200, keep=3)
    assert slots.count == 7
    assert push_gate.take_at(slots.second, 200, keep=3) == 0
    assert [runner.acquire_send_slot() for _ in range(4)] == [True, True, True, False]

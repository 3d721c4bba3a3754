"""The embedded runner: a thread per process that delivers committed notifications."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.jobs import dispatch, kick
from app.jobs.inprocess import InProcessRunner
from app.notify.send_rate import take_slots
from app.policies.jobs import PushRunner
from tests.support.jobs import (
    build_app,
    commit_notification,
    granted_user,
    messages_for,
    row_status,
    wait_for,
)


@pytest.fixture
def runner_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """An in-process app whose thread polls rarely: only a wake-up can deliver within seconds."""
    application = build_app(app, tmp_path, JOB_RUNNER="inprocess", NOTIFY_POLL_SECONDS=60)
    yield application
    application.extensions["jobs"].stop()


@pytest.fixture
def polling_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    application = build_app(app, tmp_path, JOB_RUNNER="inprocess", NOTIFY_POLL_SECONDS=0.2)
    yield application
    application.extensions["jobs"].stop()


def _runner(app: Flask) -> InProcessRunner:
    runner = app.extensions["jobs"]
    assert isinstance(runner, InProcessRunner)
    return runner


def test_a_committed_notification_is_delivered_within_seconds(runner_app, emulator_url):
    user = granted_user(runner_app, emulator_url)

    row_id = commit_notification(runner_app, user)

    assert wait_for(lambda: len(messages_for(emulator_url, user)) == 1, timeout=5)
    assert wait_for(lambda: row_status(runner_app, row_id) == "sent", timeout=2)


def test_rows_that_become_due_later_are_found_by_polling(polling_app, emulator_url):
    user = granted_user(polling_app, emulator_url)

    # The commit wakes the runner at once, but the row is due only a second later.
    row_id = commit_notification(polling_app, user, due_in=1.0)

    assert row_status(polling_app, row_id) == "pending"
    assert wait_for(lambda: row_status(polling_app, row_id) == "sent", timeout=5)
    assert len(messages_for(emulator_url, user)) == 1


def test_kick_wakes_the_runner_for_work_it_was_not_told_about(runner_app, emulator_url):
    user = granted_user(runner_app, emulator_url)
    runner_app.test_client().get("/healthz")
    # Its first round done, the thread sleeps for a minute.
    assert wait_for(lambda: _runner(runner_app).rounds >= 1)
    factory = runner_app.extensions["db"].sessionmaker
    dispatch.install(factory, lambda kind, ids: None)
    try:
        row_id = commit_notification(runner_app, user)
    finally:
        dispatch.install(factory, _runner(runner_app).dispatch)
    assert not wait_for(lambda: row_status(runner_app, row_id) == "sent", timeout=0.5)

    with runner_app.app_context():
        kick("notify")

    assert wait_for(lambda: row_status(runner_app, row_id) == "sent", timeout=5)


def test_the_thread_starts_lazily_once_and_stops_for_good(runner_app):
    runner = _runner(runner_app)
    # Not at create_app: the reloader's parent process and CLI commands build the app too.
    assert not runner.running

    runner_app.test_client().get("/healthz")
    first = runner._thread
    runner.ensure_started()
    runner.dispatch("notify", [])

    assert runner.running and runner._thread is first
    assert sum(t is first for t in threading.enumerate()) == 1

    runner.stop()
    assert not first.is_alive()
    runner.dispatch("notify", [])
    assert not runner.running


def test_the_manual_runner_leaves_the_outbox_alone(app: Flask, tmp_path: Path, emulator_url):
    manual = build_app(app, tmp_path, JOB_RUNNER="manual")
    user = granted_user(manual, emulator_url)

    row_id = commit_notification(manual, user)

    assert manual.extensions["jobs"].name == "manual"
    assert not wait_for(lambda: row_status(manual, row_id) != "pending", timeout=0.5)
    assert messages_for(emulator_url, user) == []


def test_the_embedded_runner_keeps_to_the_send_rate_it_shares_with_the_push_drain(
    app: Flask, tmp_path: Path, emulator_url
):
    # WeChat's send quota is one for the account. The embedded runner sent every due
    # notification with no send rate at all, and its process's policy push drain took its
    # slots from a bucket of its own: together they could send past NOTIFY_SEND_RATE_LIMIT.
    limited = build_app(
        app,
        tmp_path,
        JOB_RUNNER="inprocess",
        NOTIFY_POLL_SECONDS=60,
        NOTIFY_SEND_RATE_LIMIT=3,
        NOTIFY_SEND_RATE_WINDOW_SECONDS=3600,
    )
    try:
        pushes = PushRunner(limited)
        assert take_slots(pushes.gate, 1).count == 1  # a push batch of one took its slot
        users = [granted_user(limited, emulator_url) for _ in range(3)]
        rows = [commit_notification(limited, user) for user in users]

        def sent() -> int:
            return sum(row_status(limited, row) == "sent" for row in rows)

        assert wait_for(lambda: sent() == 2), [row_status(limited, row) for row in rows]
        assert not wait_for(lambda: sent() > 2, timeout=0.5)
        assert sum(len(messages_for(emulator_url, user)) for user in users) == 2
    finally:
        limited.extensions["jobs"].stop()

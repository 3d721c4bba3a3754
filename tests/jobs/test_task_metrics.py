"""Background work is counted by outcome: deliveries, policy push batches, periodic sweeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from app.db import utcnow
from app.identity.models import User
from app.integrations.wechat import get_wechat
from app.jobs.sweeps import PeriodicSweeps
from app.notify import outbox
from app.notify.models import NotificationOutbox
from app.notify.sender import Outcome, drain
from app.policies import push_drain
from app.policies.jobs import PUSH_TASK, PushRunner
from tests.factories.notify import emulator_fault


def outcomes(task: str, outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "yuhaoban_task_outcomes_total", {"task": task, "outcome": outcome}
    )
    return sample or 0.0


def _drain(app: Flask) -> None:
    drain(app.extensions["db"].sessionmaker, get_wechat(app), now_fn=utcnow)


def test_each_delivery_is_counted_by_its_outcome(
    app: Flask,
    session: Session,
    create_wechat_user: Callable[..., User],
    grant_subscription: Callable[..., None],
    enqueue_notification: Callable[..., NotificationOutbox],
    emulator_url: str,
) -> None:
    granted, ungranted, unlucky = create_wechat_user(), create_wechat_user(), create_wechat_user()
    grant_subscription(granted)
    grant_subscription(unlucky)
    before = {o: outcomes("notification", o.value) for o in Outcome}

    grant_subscription(ungranted)
    enqueue_notification(granted)
    enqueue_notification(ungranted)
    # Switched off before the send: the sender skips it (counted as a delivery's outcome).
    outbox.record_subscription_result(session, ungranted.id, {"queue_called": "ban"}, utcnow())
    session.commit()
    _drain(app)
    emulator_fault(emulator_url, -1, times=3)  # busy through the client's own retries
    enqueue_notification(unlucky)
    _drain(app)

    grew = {o: outcomes("notification", o.value) - before[o] for o in Outcome}
    assert grew[Outcome.SENT] == 1
    assert grew[Outcome.SKIPPED] == 1
    assert grew[Outcome.RETRY] == 1
    assert grew[Outcome.FAILED] == 0


def test_each_sweep_is_counted_ok_or_failed(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweeps = PeriodicSweeps(
        app.extensions["db"].sessionmaker, config=app.config, interval_seconds=60, now_fn=utcnow
    )
    ok_before = outcomes("sweep.mark_overdue", "ok")
    failed_before = outcomes("sweep.expire_leftovers", "failed")

    def broken(session: Session, *, now: dt.datetime) -> int:
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr("app.queueing.transitions.expire_leftovers", broken)
    sweeps.run(utcnow())

    assert outcomes("sweep.mark_overdue", "ok") - ok_before == 1
    assert outcomes("sweep.expire_leftovers", "failed") - failed_before == 1


def test_policy_push_outcomes_are_counted_per_batch(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = push_drain.DrainStats(limit=10, taken=3, claimed=3)
    for status in ("sent", "sent", "in_doubt"):
        batch.outcomes = batch.outcomes or {}
        batch.outcomes[status] = batch.outcomes.get(status, 0) + 1

    def one_batch(*args: Any, **kwargs: Any) -> push_drain.DrainStats:
        return batch

    monkeypatch.setattr(push_drain, "drain_once", one_batch)
    sent, in_doubt = outcomes(PUSH_TASK, "sent"), outcomes(PUSH_TASK, "in_doubt")
    PushRunner(app, gate=lambda: True).run_once()

    assert outcomes(PUSH_TASK, "sent") - sent == 2
    assert outcomes(PUSH_TASK, "in_doubt") - in_doubt == 1

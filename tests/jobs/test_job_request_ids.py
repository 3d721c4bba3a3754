"""A job enqueued by a web request logs that request's id in the worker, in the same JSON."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from flask import Flask

from app.db import get_session, utcnow
from app.jobs.dramatiq_broker import REQUEST_ID_OPTION, DramatiqRunner, RequestIdPropagation
from app.logs import json_handler
from app.notify import outbox
from app.policies.jobs import declare_dramatiq_actor
from tests.factories.notify import QUEUE_CALLED_DATA
from tests.support.jobs import build_app, granted_user, row_status, wait_for

REQUEST_ID = "req-obs-7f3a9c2e-0001"
REDIS_URL = "redis://127.0.0.1:6379/15"


class LogLines:
    """The JSON lines a logger wrote through the handler every process uses."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines() if line]

    def with_message(self, message: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["message"] == message]


@pytest.fixture
def capture() -> Iterator[Any]:
    attached: list[tuple[logging.Logger, logging.Handler, int]] = []

    def attach(name: str) -> LogLines:
        stream = io.StringIO()
        logger = logging.getLogger(name)
        handler = json_handler(stream)
        attached.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return LogLines(stream)

    yield attach
    for logger, handler, level in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _in_a_request(app: Flask, request_id: str) -> Any:
    """A request context after the app's own hooks assigned the request id from the header."""
    context = app.test_request_context("/healthz", headers={"X-Request-ID": request_id})
    context.push()
    app.preprocess_request()
    return context


# -- the middleware on its own (Dramatiq's in-memory broker, no Redis) ----------------------


def test_a_job_sent_from_a_request_logs_that_requests_id_in_the_worker(
    app: Flask, capture: Any
) -> None:
    lines = capture("tests.jobs.request_ids")
    log = logging.getLogger("tests.jobs.request_ids")
    broker = StubBroker()
    broker.add_middleware(RequestIdPropagation())

    @dramatiq.actor(broker=broker, actor_name="followed_up", max_retries=0)
    def followed_up() -> None:
        log.info("follow-up ran")

    @dramatiq.actor(broker=broker, actor_name="first_step", max_retries=0)
    def first_step() -> None:
        log.info("job ran")
        followed_up.send()  # sent by the job: keeps the request's id

    context = _in_a_request(app, REQUEST_ID)
    try:
        sent = first_step.send()
    finally:
        context.pop()
    first_step.send()  # sent by no request

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(first_step.queue_name, timeout=10_000)
        worker.join()
    finally:
        worker.stop()

    assert sent.options[REQUEST_ID_OPTION] == REQUEST_ID
    ran = lines.with_message("job ran")
    assert sorted(record["request_id"] or "" for record in ran) == ["", REQUEST_ID]
    follow_ups = lines.with_message("follow-up ran")
    assert sorted(record["request_id"] or "" for record in follow_ups) == ["", REQUEST_ID]
    assert {"time", "level", "logger", "message", "request_id"} <= set(ran[0])


def test_a_forged_request_id_in_a_message_is_not_logged(app: Flask, capture: Any) -> None:
    lines = capture("tests.jobs.request_ids")
    log = logging.getLogger("tests.jobs.request_ids")
    broker = StubBroker()
    broker.add_middleware(RequestIdPropagation())

    @dramatiq.actor(broker=broker, actor_name="forged", max_retries=0)
    def forged() -> None:
        log.info("forged ran")

    # Written straight into the queue by someone with Redis access: a phone number as an id.
    forged.send_with_options(options={REQUEST_ID_OPTION: "id-13812345678-x"})
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(forged.queue_name, timeout=10_000)
        worker.join()
    finally:
        worker.stop()

    (record,) = lines.with_message("forged ran")
    assert record["request_id"] is None


# -- the app's runner on Redis: a notification and the policy push actor -------------------


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_answers(), reason="no Redis at 127.0.0.1:6379")


@pytest.fixture
def dramatiq_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    namespace = f"test-rid-{uuid.uuid4().hex[:12]}"
    yield build_app(
        app,
        tmp_path,
        JOB_RUNNER="dramatiq",
        REDIS_URL=REDIS_URL,
        DRAMATIQ_NAMESPACE=namespace,
        NOTIFY_SWEEP_SECONDS=3600,
    )
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{namespace}*"):
        client.delete(key)


@needs_redis
def test_a_notification_committed_by_a_request_is_delivered_under_its_id(
    dramatiq_app: Flask, emulator_url: str, capture: Any
) -> None:
    lines = capture("app.notify.sender")
    runner = dramatiq_app.extensions["jobs"]
    assert isinstance(runner, DramatiqRunner)
    user = granted_user(dramatiq_app, emulator_url)

    context = _in_a_request(dramatiq_app, REQUEST_ID)
    try:
        session = get_session()
        row_id = outbox.enqueue(
            session,
            user_id=user.id,
            template_key="queue_called",
            data=dict(QUEUE_CALLED_DATA),
            dedupe_key=f"rid:{user.openid}",
            now=utcnow(),
        )
        assert row_id is not None
        session.commit()  # the runner enqueues deliver_notification after this commit
    finally:
        context.pop()

    worker = dramatiq.Worker(runner.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        assert wait_for(lambda: row_status(dramatiq_app, row_id) == "sent", timeout=10)
    finally:
        worker.stop()

    (record,) = lines.with_message("notification sent")
    assert record["request_id"] == REQUEST_ID
    assert record["logger"] == "app.notify.sender"


@needs_redis
def test_the_policy_push_drain_sent_by_a_request_carries_its_id(dramatiq_app: Flask) -> None:
    actor = declare_dramatiq_actor(dramatiq_app)
    context = _in_a_request(dramatiq_app, REQUEST_ID)
    try:
        message = actor.send()
    finally:
        context.pop()
    dramatiq_app.extensions["jobs"].broker.flush_all()

    assert message.options[REQUEST_ID_OPTION] == REQUEST_ID

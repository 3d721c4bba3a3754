"""Exactly once with real Dramatiq workers: one is killed -9 mid-batch, another takes over;
and drain loops of one worker on real connections, whose row locks meet.

The workers are `dramatiq app.jobs.worker` processes (as `make worker` starts them) on a
database of this test's own, committed to (a worker process cannot see the rolled-back
transaction of the other tests): a PostgreSQL database created beside DATABASE_URL's and
dropped afterwards, or a SQLite file. The WeChat emulator runs in this process, so the test
can make WeChat slow and count what it received.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app import create_app
from app.db import get_session, utcnow
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
    RegistryStatus,
)
from app.identity.models import User
from app.integrations.wechat import get_wechat
from app.notify import outbox
from app.notify.models import NotificationOutbox, OutboxStatus
from app.organisation.models import Department
from app.policies import criteria, jobs, profiles, push_drain, service
from app.policies.models import PolicyPush, PushStatus
from app.policies.push_schedule import PushSettings
from tests.factories.enterprises import uscc_for
from tests.support.database import build_schema
from tests.support.jobs import wait_for
from tests.support.wechat_app import TEST_APPID, TEST_SECRET
from wechat.emulator import Emulator, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/15"
BATCH = 4  # one batch in flight at once: the worker sends all of it concurrently
SLOW_SECONDS = 3.0  # how long WeChat sits on the first batch (the worker dies meanwhile)
LEASE_SECONDS = 2


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(
    not _redis_answers(), reason="Dramatiq workers need Redis at 127.0.0.1:6379"
)


@pytest.fixture
def workers_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test only, for committed rows that worker processes can read."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'push.db'}"
        return
    url = make_url(database_url)
    name = f"test_push_dramatiq_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def namespace() -> Iterator[str]:
    """Redis keys (queues, rate, follow-up) of this test only; removed afterwards."""
    name = f"test-push-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)


@pytest.fixture
def wechat() -> Iterator[tuple[Emulator, str]]:
    """An emulator of this test only: its faults and messages are nobody else's."""
    emulator = Emulator(apps={TEST_APPID: TEST_SECRET})
    server, base_url = serve_in_thread("127.0.0.1", 0, emulator=emulator)
    yield emulator, base_url
    server.shutdown()
    server.server_close()


@pytest.fixture(params=[False, True], ids=["sender-in-process", "sender-child-process"])
def settings(
    request: pytest.FixtureRequest,
    workers_database: str,
    namespace: str,
    wechat: tuple[Emulator, str],
) -> dict[str, Any]:
    """The configuration shared by this process and the workers (their environment); the
    workers send their batches from their own process or from a child (as in production)."""
    return {
        "WECHAT_BATCH_PROCESS": request.param,
        "DATABASE_URL": workers_database,
        "JOB_RUNNER": "dramatiq",
        "REDIS_URL": REDIS_URL,
        "DRAMATIQ_NAMESPACE": namespace,
        "WECHAT_API_BASE": wechat[1],
        "WECHAT_APPID": TEST_APPID,
        "WECHAT_SECRET": TEST_SECRET,
        "WECHAT_TOKEN_CACHE": "memory",
        "POLICY_PUSH_BATCH": BATCH,
        "POLICY_PUSH_CONNECTIONS": BATCH,
        "POLICY_PUSH_LEASE_SECONDS": LEASE_SECONDS,
        "POLICY_PUSH_QUIET_HOURS": "00:00-00:00",  # none: the test may run at any hour
        "NOTIFY_SWEEP_SECONDS": 3600,
    }


@pytest.fixture
def push_app(settings: dict[str, Any]) -> Flask:
    """This process's app on the workers' database: it publishes and kicks, as a view does."""
    application = create_app("testing", RATELIMIT_ENABLED=False, **settings)
    build_schema(application)
    return application


@pytest.fixture
def start_worker(settings: dict[str, Any], tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Start `dramatiq app.jobs.worker` in a process group of its own; all killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "APP_ENV": "testing",
        **{key: str(value) for key, value in settings.items()},
    }
    dramatiq = Path(sys.executable).parent / "dramatiq"

    def start(**overrides: Any) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        worker = subprocess.Popen(
            [str(dramatiq), "app.jobs.worker", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env={**env, **{key: str(value) for key, value in overrides.items()}},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its group is the main process and its worker children
        )
        log.close()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        kill(worker)


def kill(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's whole process group: no handler, no cleanup, no ack."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def worker_logs(tmp_path: Path) -> str:
    return "\n".join(path.read_text(errors="replace")[-3000:] for path in tmp_path.glob("*.log"))


def publish_to_recipients(app: Flask, emulator: Emulator) -> dict[int, str]:
    """Six exporters, four with an agent too: ten recipients of one published policy.

    Every recipient allowed policy messages, in WeChat and in our records. Returns the openid
    of each recipient's user id.
    """
    now = utcnow()
    recipients: dict[int, str] = {}
    with app.app_context():
        session = get_session()
        for serial in range(6):
            enterprise = RegistryEnterprise(
                uscc=uscc_for(90_000 + serial),
                name=f"广州市番禺区推送测试{serial}进出口有限公司",
                legal_rep_name="张三",
                status=RegistryStatus.EXISTING,
                registered_town="市桥街",
                established_on=dt.date(2015, 6, 1),
                synced_at=now,
            )
            session.add(enterprise)
            session.flush()
            profile = profiles.ensure_profile(session, enterprise, now=now)
            profiles.update_profile(
                session,
                profile,
                profiles.clean(
                    {"industry_code": "C3872", "employees": 30, "tags": ["出口企业"]},
                    profiles.IMPORTED,
                ),
                source="import",
                user_id=None,
                now=now,
                rematch=False,
            )
            roles = [BindingRole.LEGAL_REPRESENTATIVE] + ([BindingRole.AGENT] if serial < 4 else [])
            for role in roles:
                user = User(openid=f"o_push_dramatiq_{serial}_{role.value}")
                session.add(user)
                session.flush()
                session.add(
                    EnterpriseBinding(
                        user_id=user.id,
                        enterprise_id=enterprise.id,
                        role=role,
                        status=BindingStatus.ACTIVE,
                    )
                )
                emulator.login(openid=user.openid)
                # Two allowed messages: a second send would not be stopped by the grant, so
                # only the push's own exactly-once keeps it from reaching WeChat.
                emulator.grant_subscription(user.openid, "policy_push", count=2)
                for _ in range(2):
                    outbox.record_subscription_result(
                        session, user.id, {"policy_push": "accept"}, now
                    )
                recipients[user.id] = user.openid
        department = Department(code="PY-SWU-T", name="番禺区商务局（测试）")
        session.add(department)
        session.flush()
        doc = "番商务〔2024〕99号"
        policy = service.create_policy(
            session,
            department_id=department.id,
            fields={
                "title": "小微出口企业出口信用保险保费支持",
                "doc_number": doc,
                "summary": "出口信用保险保费支持",
                "benefit_kind": "insurance",
                "delivery": "automatic",
            },
            criteria=criteria.from_structured({"tags_all": ["出口企业"]}, doc=doc),
            staff_id=None,
            now=now,
        )
        service.publish(session, policy, staff_id=None, now=now)
        session.commit()
    return recipients


def pushes(app: Flask) -> list[PolicyPush]:
    with app.app_context():
        session = get_session()
        # Closed with the context (ending the read's transaction); the rows stay loaded.
        return list(session.scalars(select(PolicyPush).order_by(PolicyPush.id)))


def settled(app: Flask) -> bool:
    unsettled = {PushStatus.WAITING, PushStatus.CLAIMED, PushStatus.IN_FLIGHT}
    return all(push.status not in unsettled for push in pushes(app))


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_nothing_is_lost(
    push_app: Flask,
    wechat: tuple[Emulator, str],
    start_worker: Callable[[], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    emulator, _ = wechat
    recipients = publish_to_recipients(push_app, emulator)
    assert len(pushes(push_app)) == len(recipients) == 10
    # WeChat takes its time over the first batch: the worker dies while all of it is in flight.
    emulator.inject_fault("subscribe_send", delay=SLOW_SECONDS, times=BATCH)

    first = start_worker()
    jobs.kick(push_app)  # after the publishing commit, as the publish view does
    in_flight = wait_for(lambda: emulator.stats()["calls"]["subscribe_send"] >= BATCH, timeout=30)
    assert in_flight, worker_logs(tmp_path)
    answered_by = time.monotonic() + SLOW_SECONDS + 1.0  # WeChat is done with those by then
    kill(first)
    assert first.returncode == -signal.SIGKILL
    at_kill = pushes(push_app)
    killed = {push.id for push in at_kill if push.status is PushStatus.IN_FLIGHT}
    assert len(killed) == BATCH
    # Claimed with the first batch, to go next: never sent, so they go again.
    held = {push.id for push in at_kill if push.status is PushStatus.CLAIMED}
    assert len(held) == len(recipients) - BATCH  # one claim took them all (POLICY_PUSH_CLAIM)

    # A new worker; the next kick (a later publish) reaches it, while the dead worker's
    # message would come back only after Dramatiq's heartbeat timeout.
    start_worker()
    jobs.kick(push_app)
    assert wait_for(lambda: settled(push_app), timeout=30), worker_logs(tmp_path)
    # The requests WeChat sat on were received before the kill: they arrive, once.
    time.sleep(max(answered_by - time.monotonic(), 0))

    received = Counter(message["touser"] for message in emulator.sent_messages())
    assert received == Counter(recipients.values())  # each (policy, recipient) exactly once
    final = pushes(push_app)
    outcome = {push.id: (push.status, push.reason, push.attempts) for push in final}
    assert outcome == {
        push.id: (
            (PushStatus.IN_DOUBT, "WORKER_DIED_DURING_SEND", 1)
            if push.id in killed
            else (PushStatus.SENT, None, 2 if push.id in held else 1)
        )
        for push in final
    }
    with push_app.app_context():
        session = get_session()
        attempts = {
            (row.source_id, row.dedupe_key): (row.status, row.last_error_code)
            for row in session.scalars(select(NotificationOutbox))
        }

    def attempt(push_id: int, number: int) -> tuple[int, str]:
        return push_id, f"policy-push:{push_id}:{number}"

    expected: dict[tuple[int, str], tuple[OutboxStatus, str | None]] = {}
    for push in final:
        if push.id in killed:
            expected[attempt(push.id, 1)] = (OutboxStatus.FAILED, "IN_DOUBT")
        elif push.id in held:
            expected[attempt(push.id, 1)] = (OutboxStatus.FAILED, "WORKER_LOST")
            expected[attempt(push.id, 2)] = (OutboxStatus.SENT, None)
        else:
            expected[attempt(push.id, 1)] = (OutboxStatus.SENT, None)
    assert attempts == expected


def test_loops_handing_batches_over_while_others_are_on_the_wire_send_each_push_once(
    push_app: Flask,
    wechat: tuple[Emulator, str],
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    # Claims and batches of two: the actor's loops each claim some of the ten, and hand
    # their batches over in turn, the next one while the one before is still on the wire
    # (with the child-process sender; in this process, once it is answered).
    emulator, _ = wechat
    recipients = publish_to_recipients(push_app, emulator)
    emulator.inject_fault("subscribe_send", delay=0.2, times=len(recipients))
    start_worker(POLICY_PUSH_CLAIM=2, POLICY_PUSH_BATCH=2, POLICY_PUSH_CONNECTIONS=2)
    jobs.kick(push_app)
    assert wait_for(lambda: settled(push_app), timeout=60), worker_logs(tmp_path)

    received = Counter(message["touser"] for message in emulator.sent_messages())
    assert received == Counter(recipients.values())
    final = pushes(push_app)
    assert {(push.status, push.attempts) for push in final} == {(PushStatus.SENT, 1)}
    assert len(final) == len(recipients)


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL: row locks between connections",
)
def test_the_loop_on_the_wire_never_waits_for_a_row_lock(
    push_app: Flask, wechat: tuple[Emulator, str]
) -> None:
    # Another loop's claim (SELECT ... FOR UPDATE SKIP LOCKED) can keep locked a row it read
    # as waiting and found claimed meanwhile by this loop, without returning it; that claim
    # then waits for its turn on the wire. Were this loop to mark its next batch IN_FLIGHT
    # while holding the turn, the two would wait for each other for ever (seen in the bench).
    emulator, _ = wechat
    publish_to_recipients(push_app, emulator)
    sessions = push_app.extensions["db"].sessionmaker
    waited_out: list[int] = []

    class TurnWithAClaimWaiting:
        """The runner's send lock; at the second batch's turn, the other loop's claim."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.turns = 0

        def __enter__(self) -> None:
            self.lock.acquire()
            self.turns += 1
            if self.turns == 2:
                tried = threading.Event()
                threading.Thread(target=self.other_claim, args=(tried,)).start()
                assert tried.wait(10)

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

        def other_claim(self, tried: threading.Event) -> None:
            with sessions() as other:
                try:  # the claimed pushes, unless this loop holds them already
                    other.execute(
                        select(PolicyPush.id)
                        .where(PolicyPush.status == PushStatus.CLAIMED)
                        .with_for_update(nowait=True)
                    ).all()
                except OperationalError:
                    tried.set()
                    return
                tried.set()
                if self.lock.acquire(timeout=3):  # the other loop's turn
                    self.lock.release()
                else:
                    waited_out.append(self.turns)

    stats = push_drain.drain_once(
        sessions,
        get_wechat(push_app),
        now_fn=utcnow,
        settings=replace(PushSettings.from_config(push_app.config), batch=2, claim=4),
        catalog=push_app.extensions["notify_templates"],
        send_lock=TurnWithAClaimWaiting(),
    )
    assert stats.claimed == 4
    assert waited_out == []

"""The hall screen's SSE stream across processes: calls fan out through Redis pub/sub.

Two gunicorn servers (threaded workers, as the README asks for SSE) share one database and
one Redis, as two workers of one deployment do: a clerk calls numbers through one, and hall
screens connected to either receive every announcement, in order, once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, select, text

from app import create_app
from app.audit.service import Actor
from app.db import utcnow
from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant, User
from app.identity.principals import principal_for
from app.identity.sessions import start_session
from app.organisation.models import Hall, HallKind
from app.queueing.demo import setup_queue_hall
from app.queueing.events import Listener, RedisBroker
from app.queueing.models import TicketSource
from app.queueing.settings import from_config
from app.queueing.taking import issue_ticket
from config import PROJECT_ROOT
from tests.factories.identity import app_token_settings
from tests.support import database as test_database

# Pub/sub channels ignore the database number, so each run publishes under its own namespace
# (DRAMATIQ_NAMESPACE prefixes the channels) and parallel runs never hear each other.
REDIS_URL = "redis://127.0.0.1:6379/15"
BOOT_SECONDS = 90  # two apps importing at once on a loaded 2-core machine
CALLS = 3
EVENT_WAIT_SECONDS = 10  # calls arrive within milliseconds; this only bounds a failure


@pytest.fixture(scope="module")
def redis_url() -> str:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379: the cross-process fan-out needs a real one")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def private_database(tmp_path: Path, database_url: str) -> Iterator[str]:
    """A database the servers may commit to: a SQLite file, or a schema of its own on PostgreSQL."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'fanout.db'}"
        return
    schema = f"fanout_{uuid.uuid4().hex[:12]}"
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@dataclass
class Seeded:
    hall_id: int
    window_id: int
    access_token: str


def _seed(database: str, emulator_url: str) -> Seeded:
    """Migrate the private database; a hall with window 3, waiting citizens and its clerk."""
    app = create_app(
        "testing",
        DATABASE_URL=database,
        REDIS_URL="",
        WECHAT_API_BASE=emulator_url,
        RATELIMIT_ENABLED=False,
        JOB_RUNNER="manual",
    )
    test_database.build_schema(app)
    with app.app_context():
        session = app.extensions["db"].sessionmaker()
        hall = Hall(code="FAN01", name="跨进程测试大厅", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        qh = setup_queue_hall(session, hall, categories=[("综合业务", "A")], windows=[(3, "A")])
        clerk = StaffAccount(username="fanout.clerk", display_name="窗口", password_hash="x")
        clerk.grants = [StaffRoleGrant(role=StaffRole.WINDOW_CLERK, hall_id=hall.id)]
        session.add(clerk)
        session.add_all(User(openid=f"o_fanout_{n}") for n in range(CALLS))
        session.flush()
        settings = from_config(app.config)
        for user in session.scalars(select(User).order_by(User.id)):
            issue_ticket(
                session,
                category=qh.categories["A"],
                user_id=user.id,
                source=TicketSource.HALL_CODE,
                actor=Actor("user", user.id),
                now=utcnow(),
                settings=settings,
            )
        pair = start_session(
            session,
            principal_for(session, "staff", clerk.id),
            settings=app_token_settings(app),
            refresh_ttl_seconds=600,
            now=utcnow(),
        )
        seeded = Seeded(hall.id, qh.windows[3].id, pair.access_token)
        session.commit()
        session.close()
    app.extensions["db"].engine.dispose()
    return seeded


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: Path
    base: str = ""


def _start(name: str, env: dict[str, str], tmp_path: Path) -> Server:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers=1",
                "--worker-class=gthread",
                "--threads=4",
                "--bind=127.0.0.1:0",
                "--graceful-timeout=2",
                # Its default path is per user: a second server would take the first one's.
                "--no-control-socket",
                "wsgi:app",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(process, log)


def _wait_ready(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited early:\n{server.log.read_text()}")
        if not server.base:
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", server.log.read_text())
            server.base = found.group(1) if found else ""
        if server.base:
            try:
                if requests.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not come up:\n{server.log.read_text()}")


@pytest.fixture
def two_servers(
    tmp_path: Path, redis_url: str, private_database: str, emulator_url: str
) -> Iterator[tuple[Server, Server, Seeded]]:
    """Two gunicorn servers of the same deployment (database, Redis, namespace)."""
    seeded = _seed(private_database, emulator_url)
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "DATABASE_URL": private_database,
        "REDIS_URL": redis_url,
        "DRAMATIQ_NAMESPACE": f"test-fanout-{uuid.uuid4().hex}",
        "WECHAT_API_BASE": emulator_url,
        "WECHAT_TOKEN_CACHE": "memory",
        "JOB_RUNNER": "manual",
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    servers = [_start(name, env, tmp_path) for name in ("screen", "terminal")]
    try:
        deadline = time.monotonic() + BOOT_SECONDS
        for server in servers:
            _wait_ready(server, deadline)
        yield servers[0], servers[1], seeded
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


class Screen:
    """A hall screen: an SSE client of one server, reading events as they arrive."""

    def __init__(self, base: str, hall_id: int) -> None:
        self.response = requests.get(
            f"{base}/api/v1/screen/halls/{hall_id}/events",
            stream=True,
            timeout=(5, EVENT_WAIT_SECONDS),
        )
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines(decode_unicode=True)

    def next_event(self) -> tuple[str, dict[str, Any]]:
        # Keep-alive comments would otherwise keep a screen that hears nothing waiting forever.
        deadline = time.monotonic() + EVENT_WAIT_SECONDS
        kind = None
        try:
            for line in self._lines:
                if time.monotonic() > deadline:
                    break
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: ") and kind:
                    return kind, json.loads(line[len("data: ") :])
        except requests.ConnectionError:  # the read timed out: nothing came
            pass
        raise AssertionError(f"no event within {EVENT_WAIT_SECONDS} s")

    def close(self) -> None:
        self.response.close()


@pytest.mark.slow
@pytest.mark.timeout(BOOT_SECONDS + 120)
def test_a_call_made_in_one_process_is_announced_on_screens_of_every_process(
    two_servers: tuple[Server, Server, Seeded],
) -> None:
    screen_server, terminal_server, seeded = two_servers
    # One screen on each server: the other process's and the calling process's own.
    screens = [Screen(server.base, seeded.hall_id) for server in (screen_server, terminal_server)]
    try:
        for screen in screens:
            # Sent after the listener is registered: nothing published from now on is missed.
            assert screen.next_event() == ("hello", {"hall_id": seeded.hall_id})
        headers = {"Authorization": f"Bearer {seeded.access_token}"}
        terminal = f"{terminal_server.base}/api/v1/terminal/windows/{seeded.window_id}"
        called = []
        for _ in range(CALLS):
            answer = requests.post(f"{terminal}/call-next", headers=headers, json={}, timeout=10)
            assert answer.status_code == 200, answer.text
            called.append(answer.json()["display"])
            for action in ("serve", "finish"):
                done = requests.post(
                    f"{terminal}/tickets/{answer.json()['id']}/{action}",
                    headers=headers,
                    json={},
                    timeout=10,
                )
                assert done.status_code == 200, done.text

        assert called == ["A001", "A002", "A003"]
        expected = [f"请{display}号到3号窗口办理" for display in called]
        for screen in screens:
            # In call order, each once: a duplicate or a loss would shift the list.
            received = [screen.next_event() for _ in called]
            assert [kind for kind, _ in received] == ["call"] * CALLS
            assert [data["text"] for _, data in received] == expected
            assert [data["display"] for _, data in received] == called
    finally:
        for screen in screens:
            screen.close()


# -- the Redis broker itself -------------------------------------------------------------------


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(redis_url, f"test-events-{uuid.uuid4().hex}")
    try:
        yield broker
    finally:
        broker.close()


def _next_payload(listener: Listener) -> dict[str, Any]:
    deadline = time.monotonic() + EVENT_WAIT_SECONDS
    while time.monotonic() < deadline:
        payload = next(listener)
        if payload is not None:
            return payload
    raise AssertionError(f"no event within {EVENT_WAIT_SECONDS} s")


def _subscribers(admin: Redis, broker: RedisBroker) -> list[str]:
    """Ids of the broker's pattern-subscribed connections, as Redis lists them."""
    name = f"{broker.namespace}:queue-events"
    return [c["id"] for c in admin.client_list() if c["name"] == name and c["psub"] == "1"]


def test_screens_hear_calls_again_once_the_dropped_subscription_is_back(
    redis_url: str, redis_broker: RedisBroker
) -> None:
    listener = redis_broker.listen(4, timeout=0.2)
    admin = Redis.from_url(redis_url)
    try:
        (subscriber,) = _subscribers(admin, redis_broker)
        # What a Redis restart, failover or idle-connection reaper does to a subscriber.
        admin.client_kill_filter(_id=subscriber)
        deadline = time.monotonic() + EVENT_WAIT_SECONDS
        while not [s for s in _subscribers(admin, redis_broker) if s != subscriber]:
            assert time.monotonic() < deadline, "the relay never subscribed again"
            time.sleep(0.1)

        redis_broker.publish(4, {"display": "A002", "text": "请A002号到3号窗口办理"})

        assert _next_payload(listener)["text"] == "请A002号到3号窗口办理"
    finally:
        admin.close()

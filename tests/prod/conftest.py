"""The restart tests' topology (`make test-prod`): started once for the module, then stopped.

Its own directory (var/prod-like-test), ports (8900...), database (yhb_prodlike_test) and a
private redis-server, so it never touches `make prod-like` nor the machine's Redis. Deselected
unless the run names the marker (`pytest -m prodlike`).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from app.queueing.demo import HALL_LAT, HALL_LNG
from scripts.prod_like import ROOT, Ports, Topology, stray_processes

TEST_DIR = ROOT / "var" / "prod-like-test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "prodlike" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="restart tests run with `make test-prod` (-m prodlike)")
    for item in items:
        if item.get_closest_marker("prodlike"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    missing = [tool for tool in ("/usr/sbin/haproxy", "redis-server") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/test_tools.sh installs them as root)")
    topo = Topology(
        directory=TEST_DIR,
        ports=Ports(balancer=8900, web=(8901, 8902), wechat=8903, identity=8904, redis=8905),
        database="yhb_prodlike_test",
        overrides={
            # Fast enough for a test: the scheduler's sweep, a dead worker's lease.
            "NOTIFY_SWEEP_SECONDS": "2",
            "NOTIFY_LEASE_SECONDS": "5",
            "NOTIFY_SEND_RATE_LIMIT": "20",
            "JOB_SCHEDULER_LEASE_SECONDS": "5",
            "QUEUE_SSE_KEEPALIVE_SECONDS": "2",
        },
    )
    topo.start()
    try:
        yield topo
    finally:
        topo.stop()
        assert stray_processes(TEST_DIR) == []


@dataclass
class District:
    """A hall with two categories, citizens with access tokens, of this test only."""

    hall_id: int
    code: str
    categories: list[int]
    tokens: list[str]
    openids: list[str]
    user_ids: list[int]

    @property
    def take_body(self) -> dict[str, Any]:
        """A scan of the printed code; at the hall (setup_queue_hall puts it in 市桥)."""
        return {"code": self.code, "latitude": HALL_LAT, "longitude": HALL_LNG}


def make_district(topology: Topology, users: int) -> District:
    """Commit a hall and its citizens through the app's services, with the topology's keys."""
    from app import create_app
    from app.db import utcnow
    from app.identity.demo import new_citizens
    from app.organisation.models import Hall, HallKind
    from app.queueing import codes
    from app.queueing.demo import setup_queue_hall
    from app.queueing.settings import from_config
    from blueprints.authz import token_settings
    from scripts.prod_like import load_or_create_secrets

    keys = load_or_create_secrets(topology.env_file)
    app = create_app(
        "development",
        **keys,
        DATABASE_URL=topology.database_url,
        JOB_RUNNER="manual",
        SEED_DEMO_DATA=False,
        REDIS_URL="",
    )
    tag = uuid.uuid4().hex[:6]
    with app.test_request_context():
        session = app.extensions["db"].sessionmaker()
        hall = Hall(code=f"RST{tag}", name=f"重启测试{tag}", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        queue = setup_queue_hall(
            session, hall, categories=[("综合业务", "A"), ("社保医保", "B")], daily_cap=9999
        )
        settings = from_config(app.config)
        code = codes.create_printed_code(session, settings, hall.id, label=None, staff_id=None)
        people, tokens = new_citizens(
            session, f"o_rst_{tag}", users, settings=token_settings(), now=utcnow()
        )
        district = District(
            hall_id=hall.id,
            code=codes.printed_token(settings, code),
            categories=[queue.categories["A"].id, queue.categories["B"].id],
            tokens=tokens,
            openids=[p.openid for p in people],
            user_ids=[p.id for p in people],
        )
        session.commit()
        session.close()
    app.extensions["db"].engine.dispose()
    return district


@dataclass
class Load:
    """Client threads calling `work(http, index)` until stopped; every status counted."""

    work: Callable[[requests.Session, int], list[int]]
    threads: int = 4
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: list[threading.Thread] = field(default_factory=list)
    _next: int = 0

    def _take_index(self) -> int:
        with self._lock:
            index = self._next
            self._next += 1
            return index

    def _run(self) -> None:
        http = requests.Session()
        while not self._stop.is_set():
            index = self._take_index()
            try:
                seen = self.work(http, index)
            except StopIteration:
                return
            except requests.RequestException as exc:
                with self._lock:
                    self.errors.append(type(exc).__name__)
                continue
            with self._lock:
                self.statuses.update(seen)

    def __enter__(self) -> Load:
        self._pool = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for thread in self._pool:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._pool:
            thread.join(60)

    @property
    def server_errors(self) -> dict[int, int]:
        return {status: n for status, n in self.statuses.items() if status >= 500}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")

"""The scheduler: one leader among several, fenced, replaced within the lease's TTL."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy.orm import Session

from app.jobs.dramatiq_broker import DramatiqRunner, SweepTicker
from app.jobs.scheduler import LeaderLease, PeriodicJob, Scheduler, build_scheduler
from app.jobs.sweeps import PeriodicSweeps
from app.policies.models import Policy, PolicyStatus
from tests.support.jobs import REDIS_URL, build_app, needs_redis

pytestmark = needs_redis


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    name = f"test-scheduler-{uuid.uuid4().hex[:12]}"
    yield name
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)


class _Recorder:
    """The jobs' runs, as (scheduler name, job, monotonic time)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, float]] = []
        self._lock = threading.Lock()

    def job(self, owner: str, name: str, interval: float) -> PeriodicJob:
        def run() -> None:
            with self._lock:
                self.runs.append((owner, name, time.monotonic()))

        return PeriodicJob(name, interval, run)


def _scheduler(
    client: redis.Redis, prefix: str, owner: str, recorder: _Recorder, *, ttl: float = 1.5
) -> Scheduler:
    lease = LeaderLease(client, prefix=prefix, ttl_seconds=ttl, holder=owner)
    jobs = [recorder.job(owner, "sweep", 0.3), recorder.job(owner, "seal", 0.3)]
    return Scheduler(lease, jobs, tick_seconds=0.1)


def _start(scheduler: Scheduler) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def test_two_schedulers_started_together_run_each_tick_once(
    client: redis.Redis, prefix: str
) -> None:
    recorder = _Recorder()
    first, second = (_scheduler(client, prefix, name, recorder) for name in ("a", "b"))
    threads = [_start(first), _start(second)]
    time.sleep(2.0)
    for thread, stop in threads:
        stop.set()
        thread.join(5)

    owners = {owner for owner, _, _ in recorder.runs}
    assert len(owners) == 1
    for job in ("sweep", "seal"):
        times = [at for _, name, at in recorder.runs if name == job]
        # About 2 s / 0.3 s turns, never two within one interval.
        assert 4 <= len(times) <= 8
        assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(times))


def test_a_stopped_leader_hands_over_at_once(client: redis.Redis, prefix: str) -> None:
    recorder = _Recorder()
    first = _scheduler(client, prefix, "a", recorder)
    first_thread, first_stop = _start(first)
    time.sleep(0.5)
    second = _scheduler(client, prefix, "b", recorder)
    second_thread, second_stop = _start(second)
    time.sleep(0.5)
    assert {owner for owner, _, _ in recorder.runs} == {"a"}

    first_stop.set()
    first_thread.join(5)
    stopped_at = time.monotonic()
    time.sleep(1.0)
    second_stop.set()
    second_thread.join(5)

    taken_over = [at for owner, _, at in recorder.runs if owner == "b"]
    assert taken_over and min(taken_over) - stopped_at < 0.5
    assert all(at <= stopped_at for owner, _, at in recorder.runs if owner == "a")


def test_a_dead_leader_is_replaced_within_the_ttl(client: redis.Redis, prefix: str) -> None:
    recorder = _Recorder()
    dead = _scheduler(client, prefix, "a", recorder, ttl=1.0)
    assert dead.tick() == ["sweep", "seal"]  # then it never ticks again, nor releases
    died_at = time.monotonic()

    survivor = _scheduler(client, prefix, "b", recorder, ttl=1.0)
    thread, stop = _start(survivor)
    time.sleep(1.6)
    stop.set()
    thread.join(5)

    taken_over = [at for owner, _, at in recorder.runs if owner == "b"]
    assert taken_over
    assert 0.5 < min(taken_over) - died_at < 1.0 + 0.4


def test_a_paused_leader_that_lost_its_lease_runs_nothing(client: redis.Redis, prefix: str) -> None:
    recorder = _Recorder()
    paused = _scheduler(client, prefix, "a", recorder, ttl=0.5)
    assert paused.tick() == ["sweep", "seal"]
    time.sleep(0.7)  # paused past its TTL: another takes the lease
    other = _scheduler(client, prefix, "b", recorder, ttl=5)
    assert other.lease.hold()
    assert other.lease.token > paused.lease.token

    # Waking up, the paused one still believes its token: the claim itself fences it off.
    assert not paused.lease.claim("sweep", 0.0)
    assert paused.lease.token == 0
    assert paused.tick() == []
    assert {owner for owner, _, _ in recorder.runs} == {"a"}
    assert len(recorder.runs) == 2


def test_a_job_that_fails_does_not_stop_the_others(client: redis.Redis, prefix: str) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("database away")

    lease = LeaderLease(client, prefix=prefix, ttl_seconds=5)
    scheduler = Scheduler(
        lease,
        [PeriodicJob("broken", 60, broken), PeriodicJob("fine", 60, lambda: ran.append("fine"))],
    )
    assert scheduler.tick() == ["fine"]
    assert scheduler.tick() == []  # neither is due again within its interval
    assert ran == ["fine"]


def test_workers_leave_the_periodic_work_to_a_configured_scheduler(
    app: Flask, tmp_path: Path, prefix: str
) -> None:
    owned = build_app(
        app,
        tmp_path / "owned",
        JOB_RUNNER="dramatiq",
        JOB_SCHEDULER="process",
        REDIS_URL=REDIS_URL,
        DRAMATIQ_NAMESPACE=prefix,
    )
    runner = owned.extensions["jobs"]
    assert isinstance(runner, DramatiqRunner)
    assert not any(isinstance(m, SweepTicker) for m in runner.broker.middleware)

    elected = build_app(
        app, tmp_path / "elected", JOB_RUNNER="dramatiq", REDIS_URL=REDIS_URL,
        DRAMATIQ_NAMESPACE=prefix,
    )  # fmt: skip
    runner = elected.extensions["jobs"]
    assert isinstance(runner, DramatiqRunner)
    assert any(isinstance(m, SweepTicker) for m in runner.broker.middleware)


def test_the_app_scheduler_sends_the_outbox_sweep_and_runs_the_rest(
    app: Flask, tmp_path: Path, prefix: str, client: redis.Redis
) -> None:
    application = build_app(
        app,
        tmp_path,
        JOB_RUNNER="dramatiq",
        JOB_SCHEDULER="process",
        REDIS_URL=REDIS_URL,
        DRAMATIQ_NAMESPACE=prefix,
    )
    scheduler = build_scheduler(application)
    assert [job.name for job in scheduler.jobs] == ["outbox_sweep", "audit_seal", "domain_sweeps"]
    assert scheduler.tick() == ["outbox_sweep", "audit_seal", "domain_sweeps"]
    # The sweep went to the workers' queue as a message.
    assert (
        client.llen(f"{prefix}:dramatiq:notify") + client.hlen(f"{prefix}:dramatiq:notify.msgs")
        >= 1
    )
    scheduler.lease.release()


def test_the_scheduler_refuses_the_in_process_runner(app: Flask, tmp_path: Path) -> None:
    application = build_app(app, tmp_path, JOB_RUNNER="manual")
    with pytest.raises(RuntimeError, match="JOB_RUNNER=dramatiq"):
        build_scheduler(application)


def test_the_domain_sweeps_expire_policies_past_their_date(
    app: Flask, session: Session, create_policy: Callable[..., Policy]
) -> None:
    published = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
    policy = create_policy(publish=True, now=published, expires_on=dt.date(2026, 12, 31))
    session.commit()
    sweeps = PeriodicSweeps(
        app.extensions["db"].sessionmaker,
        config=app.config,
        interval_seconds=60,
        now_fn=lambda: published,
    )

    assert sweeps.run(dt.datetime(2026, 12, 31, 8, 0, tzinfo=dt.UTC)).policies_expired == 0
    assert sweeps.run(dt.datetime(2027, 1, 1, 8, 0, tzinfo=dt.UTC)).policies_expired == 1
    session.refresh(policy)
    assert policy.status == PolicyStatus.EXPIRED


class _Unreachable(redis.Redis):
    """A client whose every script call fails as if Redis had gone away."""

    def evalsha(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise redis.exceptions.ConnectionError("Connection refused")


def test_a_leader_that_cannot_reach_redis_says_it_no_longer_leads(
    client: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # CI's restart test saw two schedulers whose last word was "leads": one had lost Redis
    # during the Redis restart and dropped its lease without a word, the other took it.
    recorder = _Recorder()
    leader = _scheduler(client, prefix, "a", recorder)
    assert leader.tick() == ["sweep", "seal"]
    leader.lease._redis = _Unreachable.from_url(REDIS_URL)
    leader.lease._hold.registered_client = leader.lease._redis
    with caplog.at_level("INFO", logger="app.jobs.scheduler"):
        assert leader.tick() == []
    assert leader.lease.token == 0
    lost = [record for record in caplog.records if record.getMessage().startswith("scheduler lost")]
    assert [record.__dict__["holder"] for record in lost] == ["a"]


def test_a_fenced_leader_says_it_no_longer_leads(
    client: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = _Recorder()
    paused = _scheduler(client, prefix, "a", recorder, ttl=0.5)
    assert paused.tick() == ["sweep", "seal"]
    time.sleep(0.7)
    assert _scheduler(client, prefix, "b", recorder, ttl=5).lease.hold()
    with caplog.at_level("INFO", logger="app.jobs.scheduler"):
        assert not paused.lease.claim("sweep", 0.0)
    assert [record.getMessage() for record in caplog.records] == ["scheduler lost the lease"]

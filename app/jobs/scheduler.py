"""The one scheduler of the periodic work: `flask --app wsgi jobs scheduler`.

With JOB_RUNNER=dramatiq and JOB_SCHEDULER=process the workers stop timing anything
themselves; this process does, and only one of however many are started leads:

- a leader lease in Redis (SET NX with a TTL), renewed every tick by its holder. Each new
  lease takes a number from a counter (the fencing token) and the lease's value names holder
  and token;
- before running a job the leader claims that job's turn with one Lua script that checks, in
  Redis, that the lease still holds its own value and that the job's interval has passed (on
  Redis's clock, so hosts' clocks never matter). A process that was paused past the TTL finds
  another value there and runs nothing: that is the fence;
- a leader that stops (SIGTERM) deletes its lease, so another takes over at its next tick; one
  that dies leaves the lease to expire, and another takes over within the TTL. The last run of
  each job is kept in Redis, so the new leader keeps the cadence.

The jobs: the outbox sweep is sent to the workers as a Dramatiq message (it calls WeChat under
the shared send rate); the domain sweeps (`app.jobs.sweeps`, policy expiry included) and the
audit seal are short database work and run here. Every job is idempotent, so a leader paused
in the middle of one, overlapped by the next leader, does no harm.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: lease, fencing counter. ARGV: holder, ttl in ms, the holder's token ("" if none).
# Returns the token the holder leads under, or 0 when another holds the lease.
_HOLD = """
local held = redis.call('get', KEYS[1])
if held then
  if ARGV[3] ~= '' and held == ARGV[1] .. ':' .. ARGV[3] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return tonumber(ARGV[3])
  end
  return 0
end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

# KEYS: lease, the job's last run. ARGV: the lease's expected value, the interval in seconds.
# Returns -1 when the lease is no longer ours (fenced), 0 when not due, 1 when claimed.
_CLAIM = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local clock = redis.call('time')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local last = redis.call('get', KEYS[2])
if last and now - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('set', KEYS[2], string.format('%.6f', now), 'EX', math.max(math.ceil(ARGV[2] * 4), 60))
return 1
"""

# KEYS: lease. ARGV: its expected value. Deletes it only if it is still ours.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LeaderLease:
    """A fenced leader lease in Redis under `prefix` (one per deployment namespace)."""

    def __init__(
        self, redis: Redis, *, prefix: str, ttl_seconds: float, holder: str | None = None
    ) -> None:
        self._redis = redis
        self._lease_key = f"{prefix}:lease"
        self._fence_key = f"{prefix}:fence"
        self._job_prefix = f"{prefix}:last-run"
        self.ttl_seconds = ttl_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token = 0
        self._hold = redis.register_script(_HOLD)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    @property
    def _value(self) -> str:
        return f"{self.holder}:{self.token}"

    def hold(self) -> bool:
        """Take the lease if free, renew it if ours; True while this process leads."""
        ttl_ms = max(int(self.ttl_seconds * 1000), 1)
        current = str(self.token) if self.token else ""
        token = int(
            self._hold(keys=[self._lease_key, self._fence_key], args=[self.holder, ttl_ms, current])
        )
        self._become(token, reason="another holds it")
        return bool(token)

    def give_up(self, reason: str) -> None:
        """Stop believing this process leads (Redis unreachable): it cannot prove it does."""
        self._become(0, reason=reason)

    def _become(self, token: int, *, reason: str) -> None:
        # Every change of leadership is logged here, once: operators (and the restart test)
        # read who leads from the last "leads" or "lost" line of each scheduler's log.
        if token != self.token:
            if token:
                log.info("scheduler leads", extra={"holder": self.holder, "token": token})
            else:
                log.warning(
                    "scheduler lost the lease", extra={"holder": self.holder, "reason": reason}
                )
        self.token = token

    def claim(self, job: str, interval_seconds: float) -> bool:
        """Claim this job's turn: only while the lease is still ours and the interval passed."""
        if not self.token:
            return False
        outcome = int(
            self._claim(
                keys=[self._lease_key, f"{self._job_prefix}:{job}"],
                args=[self._value, interval_seconds],
            )
        )
        if outcome < 0:
            self._become(0, reason=f"fenced off before {job}")
        return outcome > 0

    def release(self) -> None:
        """Give the lease up now (on a clean stop), so another takes over at once."""
        if self.token:
            self._release(keys=[self._lease_key], args=[self._value])
            self.token = 0


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval_seconds: float
    run: Callable[[], object]


class Scheduler:
    """Runs each job when its interval has passed, while and only while it leads."""

    def __init__(
        self, lease: LeaderLease, jobs: Sequence[PeriodicJob], *, tick_seconds: float = 1.0
    ) -> None:
        self.lease = lease
        self.jobs = list(jobs)
        # A tick well inside the TTL, so the leader renews long before the lease runs out.
        self.tick_seconds = min(tick_seconds, lease.ttl_seconds / 3)

    def tick(self) -> list[str]:
        """Renew or take the lease, then run the jobs that are due; return their names."""
        ran: list[str] = []
        try:
            if not self.lease.hold():
                return ran
            for job in self.jobs:
                if not self.lease.claim(job.name, job.interval_seconds):
                    if not self.lease.token:
                        break  # fenced: another leads now
                    continue
                try:
                    job.run()
                    ran.append(job.name)
                except Exception:
                    log.exception("scheduled job failed", extra={"job": job.name})
        except RedisError:
            # Without Redis nobody can prove they lead: run nothing until it answers again.
            log.warning("scheduler cannot reach Redis", exc_info=True)
            self.lease.give_up("Redis unreachable")
        return ran

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, then hand the lease back."""
        log.info("scheduler started", extra={"holder": self.lease.holder})
        while not stop.is_set():
            started = time.monotonic()
            self.tick()
            stop.wait(max(self.tick_seconds - (time.monotonic() - started), 0.0))
        try:
            self.lease.release()
        except RedisError:
            log.warning("scheduler could not release its lease", exc_info=True)
        log.info("scheduler stopped", extra={"holder": self.lease.holder})


def build_scheduler(app: Flask, *, tick_seconds: float = 1.0) -> Scheduler:
    """The scheduler of `app`: its Dramatiq runner's Redis and namespace, and the app's jobs."""
    from app.audit.chain import AuditChain
    from app.audit.service import seal_all
    from app.db import utcnow
    from app.jobs.dramatiq_broker import DramatiqRunner
    from app.jobs.sweeps import PeriodicSweeps

    runner = app.extensions["jobs"]
    if not isinstance(runner, DramatiqRunner):
        raise RuntimeError("the scheduler needs JOB_RUNNER=dramatiq (workers on Redis)")
    settings = runner.settings
    if not settings.scheduler_owns_periodic_work:
        # Otherwise workers would sweep and seal as well, and the cadence would be doubled.
        log.warning("JOB_SCHEDULER is not 'process': the workers run the periodic work too")
    sessions = app.extensions["db"].sessionmaker
    sweeps = PeriodicSweeps(
        sessions,
        config=app.config,
        interval_seconds=settings.domain_sweep_seconds,
        now_fn=utcnow,
    )
    chain = AuditChain.from_config(app.config)
    jobs = [
        PeriodicJob("outbox_sweep", settings.sweep_seconds, runner.sweep_outbox.send),
        PeriodicJob("audit_seal", settings.sweep_seconds, lambda: seal_all(sessions, chain)),
        PeriodicJob("domain_sweeps", settings.domain_sweep_seconds, lambda: sweeps.run(utcnow())),
    ]
    lease = LeaderLease(
        runner.redis,
        prefix=f"{settings.namespace}:scheduler",
        ttl_seconds=settings.scheduler_lease_seconds,
    )
    return Scheduler(lease, jobs, tick_seconds=tick_seconds)

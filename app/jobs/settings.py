"""The job runner's settings, read from the app config with defaults until config/ lists them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.notify.sender import RetryPolicy


@dataclass(frozen=True)
class JobSettings:
    runner: str = "inprocess"
    redis_url: str = ""
    # Prefix of every Redis key of the queue; tests use their own so runs never mix.
    namespace: str = "yuhaoban"
    # In-process runner: how often the thread looks for due rows when nobody wakes it.
    poll_seconds: float = 5.0
    batch: int = 50
    # Dramatiq: how often one worker (chosen through a Redis key) enqueues an outbox sweep.
    sweep_seconds: int = 15
    # How often each process runs the domain sweeps (leftover tickets, missed appointments).
    domain_sweep_seconds: float = 60.0
    # The global WeChat send rate, shared by every worker: `send_rate_limit` per window.
    send_rate_limit: int = 20
    send_rate_window_seconds: int = 1
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # "" (default): Dramatiq workers run the periodic work themselves, one elected per interval.
    # "process": one `flask jobs scheduler` process (leader lease in Redis) owns it instead.
    scheduler: str = ""
    # The scheduler's leader lease: a stopped leader is replaced within this many seconds.
    scheduler_lease_seconds: float = 15.0
    # Dramatiq: the longest an idle worker waits before asking Redis for messages again.
    idle_poll_ms: int = 100

    @property
    def scheduler_owns_periodic_work(self) -> bool:
        """True when workers leave the sweeps, the outbox tick and the audit seal to it."""
        return self.runner == "dramatiq" and self.scheduler == "process"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JobSettings:
        """Build from a Flask config; every NOTIFY_* key is optional."""
        return cls(
            runner=str(config.get("JOB_RUNNER") or "inprocess"),
            redis_url=str(config.get("REDIS_URL") or ""),
            namespace=str(config.get("DRAMATIQ_NAMESPACE") or "yuhaoban"),
            poll_seconds=float(config.get("NOTIFY_POLL_SECONDS", 5.0)),
            batch=int(config.get("NOTIFY_BATCH_SIZE", 50)),
            sweep_seconds=int(config.get("NOTIFY_SWEEP_SECONDS", 15)),
            domain_sweep_seconds=float(config.get("JOB_DOMAIN_SWEEP_SECONDS", 60.0)),
            send_rate_limit=int(config.get("NOTIFY_SEND_RATE_LIMIT", 20)),
            send_rate_window_seconds=int(config.get("NOTIFY_SEND_RATE_WINDOW_SECONDS", 1)),
            scheduler=str(config.get("JOB_SCHEDULER") or ""),
            scheduler_lease_seconds=float(config.get("JOB_SCHEDULER_LEASE_SECONDS", 15.0)),
            idle_poll_ms=max(int(config.get("JOB_IDLE_POLL_MS", 100)), 1),
            policy=RetryPolicy(
                max_attempts=int(config.get("NOTIFY_MAX_ATTEMPTS", 6)),
                base_delay_seconds=float(config.get("NOTIFY_RETRY_BASE_SECONDS", 30.0)),
                lease_seconds=float(config.get("NOTIFY_LEASE_SECONDS", 60.0)),
            ),
        )

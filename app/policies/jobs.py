"""Running the push drain: a thread in this process (default) or worker processes.

With `JOB_RUNNER=inprocess` (make run) a daemon thread drains policy pushes every few seconds
and when `kick` wakes it after a commit. In production (`JOB_RUNNER=dramatiq`) run
`flask --app wsgi policies push-worker --threads 4` beside the Dramatiq workers: every worker
shares the Redis send rate with them. Tests (`manual`) call `push.drain_once` themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask, current_app

from app.db import utcnow
from app.policies import push

log = logging.getLogger(__name__)
_EXTENSION = "policy_push_runner"


class PushRunner:
    """Threads draining the push outbox until stopped."""

    def __init__(self, app: Flask, *, threads: int = 1) -> None:
        self.app = app
        self.settings = push.PushSettings.from_config(app.config)
        self.gate: Callable[[], bool] = push.make_gate(self.settings)
        self.threads = threads
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if any(t.is_alive() for t in self._workers) or self.stopping.is_set():
                return
            self._workers = [
                threading.Thread(target=self._loop, name=f"policy-push-{i}", daemon=True)
                for i in range(self.threads)
            ]
            for thread in self._workers:
                thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self._workers:
            thread.join(timeout)

    def run_once(self) -> int:
        """Drain batches until one comes back short; return how many pushes were claimed."""
        from app.integrations.wechat import get_wechat

        database = self.app.extensions["db"]
        total = 0
        while not self.stopping.is_set():
            stats = push.drain_once(
                database.sessionmaker,
                get_wechat(self.app),
                now_fn=utcnow,
                settings=self.settings,
                gate=self.gate,
            )
            total += stats.claimed
            if stats.claimed < self.settings.batch:
                break
        return total

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("policy push drain failed")
            self.wake.wait(self.settings.poll_seconds)
            self.wake.clear()


def kick(app: Flask | None = None) -> None:
    """After a commit that queued pushes: wake the in-process drain (if that is the runner)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    if str(app.config.get("JOB_RUNNER") or "inprocess") != "inprocess":
        return
    runner = app.extensions.get(_EXTENSION)
    if runner is None:
        runner = app.extensions.setdefault(_EXTENSION, PushRunner(app))
    runner.start()
    runner.wake.set()

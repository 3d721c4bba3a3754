"""The embedded runner: one daemon thread per process drains the outbox, seals the audit log
and runs the periodic domain sweeps (`app.jobs.sweeps`).

Used on a laptop (`make run`) and by single-process deployments. The thread starts lazily, on
the first request or the first dispatch, never at `create_app`: the Flask reloader's parent
process builds the app too but serves no request, and a CLI command (migrations) should not
start delivering. After a fork (gunicorn --preload) the child starts its own thread.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import AuditChain, seal_all
from app.jobs.settings import JobSettings
from app.jobs.sweeps import PeriodicSweeps
from app.notify.sender import SubscribeMessageSender, drain

log = logging.getLogger(__name__)

MAX_PAUSE_SECONDS = 60.0


class InProcessRunner:
    """Drains the outbox every `poll_seconds`, and at once when woken by a dispatch."""

    name = "inprocess"

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        wechat: Callable[[], SubscribeMessageSender],
        settings: JobSettings,
        now_fn: Callable[[], dt.datetime],
        sweeps: PeriodicSweeps | None = None,
        audit_chain: AuditChain | None = None,
        send_rate: Callable[[], bool] | None = None,
    ) -> None:
        self._session_factory = session_factory
        # WeChat's send quota (`app.jobs.send_gate`; None: unlimited, tests of other jobs).
        self._send_rate = send_rate
        self._sweeps = sweeps
        # None: this runner leaves the audit log to another (tests of other jobs).
        self._audit_chain = audit_chain
        self._wechat = wechat
        self._settings = settings
        self._now_fn = now_fn
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._atexit_registered = False
        # Drain rounds completed by the thread (for health checks and tests).
        self.rounds = 0

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def ensure_started(self) -> None:
        """Start the thread unless it runs in this process already (or the runner was stopped)."""
        if self.running or self._stopping.is_set():
            return
        with self._lock:
            if self.running or self._stopping.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="outbox-runner", daemon=True)
            self._pid = os.getpid()
            self._thread.start()
            if not self._atexit_registered:
                # Let the row being sent finish rather than leave it leased until expiry.
                atexit.register(self.stop)
                self._atexit_registered = True
            log.info("in-process job runner started", extra={"pid": self._pid})

    def dispatch(self, kind: str, ids: list[int]) -> None:
        """Something was committed: wake the thread (starting it if needed)."""
        self.ensure_started()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop for good and wait for the current row to finish."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def run_once(self) -> int:
        """Seal the audit log, run the domain sweeps when due, then drain until a batch comes
        back short; return rows claimed."""
        if self._audit_chain is not None:
            seal_all(self._session_factory, self._audit_chain)
        if self._sweeps is not None:
            self._sweeps.run_if_due()
        claimed = 0
        while not self._stopping.is_set():
            stats = drain(
                self._session_factory,
                self._wechat(),
                now_fn=self._now_fn,
                batch=self._settings.batch,
                policy=self._settings.policy,
                gate=self._send_rate,
            )
            claimed += stats.claimed
            if stats.claimed < self._settings.batch:
                break
        return claimed

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self.run_once()
                self.rounds += 1
                failures = 0
            except Exception:
                # A database hiccup must not kill the thread; back off while it lasts (an
                # unmigrated database would otherwise log a traceback every few seconds).
                if failures == 0:
                    log.exception("in-process outbox drain failed")
                failures += 1
            pause = min(self._settings.poll_seconds * 2 ** min(failures, 10), MAX_PAUSE_SECONDS)
            self._wake.wait(pause if failures else self._settings.poll_seconds)
            self._wake.clear()

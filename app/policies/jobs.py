"""Running the push drain: threads in this process, a push-worker command, or a Dramatiq actor.

- `JOB_RUNNER=inprocess` (make run): a daemon thread drains policy pushes every few seconds
  and when `kick` wakes it after a commit.
- `JOB_RUNNER=dramatiq` (production): `kick` sends the `drain_policy_pushes` actor, which the
  Dramatiq workers (`dramatiq app.jobs.worker`) run on the `policy_push` queue. It drains
  batches until one comes back short, then sends itself again, delayed, for the next push that
  is waiting (quiet hours, caps, backoff); a Redis key lets only one such delayed message wait
  at a time. Every worker takes the send rate from the same Redis limiter as the notification
  actors. `flask --app wsgi policies push-worker` remains for a dedicated drain process.
- `manual` (tests): tests call `push_drain.drain_once` themselves.

A worker process sends a batch `POLICY_PUSH_CONNECTIONS` requests at a time
(`WeChatClient.send_subscribe_messages`), from a child process of its own unless
`WECHAT_BATCH_PROCESS` is off (`wechat.batch_sender`).
The actor keeps `ACTOR_LOOPS` drain loops going at once: while one batch is on the wire, the
next is claimed and the last one recorded, so WeChat is not left waiting on the database (one
loop spent half its time in claims and records, in which nothing was sent). The loops of a
runner take turns to hand a batch to WeChat (`send_lock`): a batch is marked IN_FLIGHT before
its loop waits for the turn and committed only when the turn comes, and the turn passes on
once the batch has started (`push_drain.drain_once`), so a worker that dies leaves IN_DOUBT
the batch on the wire and the one behind it, not one per claim (the rest of its claims go
back when their lease runs out).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from app.db import utcnow
from app.extensions import current_flask_app
from app.jobs import send_gate
from app.observability.metrics import count_task
from app.policies import push_drain
from app.policies.models import PolicyPush, PushStatus
from app.policies.push_schedule import PushSettings

log = logging.getLogger(__name__)
_EXTENSION = "policy_push_runner"
_ACTOR = "policy_push_actor"
QUEUE = "policy_push"
ACTOR_NAME = "drain_policy_pushes"
# Batches a drain actor keeps going at once (claim, send, record overlap; see above).
ACTOR_LOOPS = 3
# The task name of a push's outcome (sent, skipped, failed, in_doubt, ...) in the job metric.
PUSH_TASK = "policy_push"


class PushRunner:
    """Drains the push outbox: in its own threads (`start`) or when called (`run_once`)."""

    def __init__(
        self,
        app: Flask,
        *,
        threads: int = 1,
        gate: Callable[[], bool] | None = None,
        loops: int = 1,
    ) -> None:
        self.app = app
        # Drain loops of one `run_once`, each with a batch of its own going at once.
        self.loops = max(loops, 1)
        self.settings = PushSettings.from_config(app.config)
        self.gate: Callable[[], bool] = gate or send_gate(app)
        self.threads = threads
        # One batch of this runner on the wire at a time (see the module's docstring).
        self.send_lock = threading.Lock()
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
        """Drain until batches come back short (`loops` at once); return the due pushes taken."""
        if self.loops == 1:
            return self._drain()
        with ThreadPoolExecutor(self.loops, thread_name_prefix="policy-push-loop") as loops:
            return sum(loops.map(lambda _: self._drain(), range(self.loops)))

    def _drain(self) -> int:
        """Drain batches until one comes back short; return how many due pushes were taken."""
        from app.integrations.wechat import get_wechat

        database = self.app.extensions["db"]
        total = 0
        while not self.stopping.is_set():
            stats = push_drain.drain_once(
                database.sessionmaker,
                get_wechat(self.app),
                now_fn=utcnow,
                settings=self.settings,
                catalog=self.app.extensions["notify_templates"],
                gate=self.gate,
                send_lock=self.send_lock,
            )
            total += stats.taken
            for outcome, count in (stats.outcomes or {}).items():
                count_task(PUSH_TASK, outcome, count)
            if stats.taken < stats.limit or not stats.taken:
                break
        return total

    def next_due(self) -> dt.datetime | None:
        """When the drain has work next (None: no more).

        The earliest waiting push falls due, or the earliest in-flight lease runs out: its
        worker may have died mid-batch, and only a drain after the lease settles the batch
        (`recover`); the dead worker's message comes back only after Dramatiq's heartbeat
        timeout.
        """
        with self.app.extensions["db"].sessionmaker() as session:
            waiting = session.scalar(
                select(func.min(PolicyPush.due_at)).where(PolicyPush.status == PushStatus.WAITING)
            )
            leased = session.scalar(
                select(func.min(PolicyPush.locked_until)).where(
                    PolicyPush.status.in_([PushStatus.CLAIMED, PushStatus.IN_FLIGHT])
                )
            )
        return min((at for at in (waiting, leased) if at is not None), default=None)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("policy push drain failed")
            self.wake.wait(self.settings.poll_seconds)
            self.wake.clear()


def declare_dramatiq_actor(app: Flask) -> Any:
    """The `drain_policy_pushes` actor on the app's Dramatiq broker (declared once per app)."""
    declared = app.extensions.get(_ACTOR)
    if declared is not None:
        return declared
    import dramatiq

    runner = app.extensions["jobs"]  # a DramatiqRunner: its broker and Redis
    # The send rate: the app's one gate (`app.jobs.send_gate`), the runner's too, taken a
    # batch at a time instead of one slot per Redis transaction.
    pushes = PushRunner(app, loops=ACTOR_LOOPS)
    namespace = runner.settings.namespace

    def drain_policy_pushes() -> None:
        pushes.run_once()
        due = pushes.next_due()
        if due is None:
            return
        delay_ms = max(int((due - utcnow()).total_seconds() * 1000), 1000)
        # One delayed follow-up at a time, however many drains finish meanwhile.
        if runner.redis.set(f"{namespace}:policy-push-next", "1", nx=True, px=delay_ms):
            actor.send_with_options(delay=delay_ms)

    actor = dramatiq.actor(
        actor_name=ACTOR_NAME,
        queue_name=QUEUE,
        broker=runner.broker,
        max_retries=0,  # the outbox is the state; the next kick or follow-up drains again
        time_limit=10 * 60 * 1000,
    )(drain_policy_pushes)
    app.extensions[_ACTOR] = actor
    return actor


def kick(app: Flask | None = None) -> None:
    """After a commit that queued pushes: wake the in-process drain or send the actor."""
    app = app or current_flask_app()
    runner_name = str(app.config.get("JOB_RUNNER") or "inprocess")
    if runner_name == "dramatiq":
        declare_dramatiq_actor(app).send()
        return
    if runner_name != "inprocess":
        return
    runner = app.extensions.get(_EXTENSION)
    if runner is None:
        runner = app.extensions.setdefault(_EXTENSION, PushRunner(app))
    runner.start()
    runner.wake.set()

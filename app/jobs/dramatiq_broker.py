"""The distributed runner: Dramatiq workers on Redis.

Why Dramatiq on Redis (the lead's decision):

- Late acknowledgement by default: a message is acked only after its actor returns, so a
  worker killed mid-job leaves the message to be redelivered to another worker.
- Rate limits shared on Redis: the WeChat send rate is one limit for every worker process on
  every host (`app.notify.send_rate`, on per-second counters as Dramatiq's window limiter
  keeps them), which the policy push (thousands of messages at once) needs.
- Simpler than Celery for a system of this size: one broker, plain functions as actors.

The outbox table stays the source of truth. The queue carries only "deliver outbox row N"
(`deliver_notification`) and "drain what is due" (`sweep_outbox`); a lost message never loses
a notification, because one worker (elected each interval through a Redis key) enqueues a
sweep every `sweep_seconds`, which finds due rows, retries included, and delivers them.
Both actors claim before sending, so a duplicate message is a no-op. With
JOB_SCHEDULER=process the workers elect nobody: the one leading `flask jobs scheduler`
enqueues the sweeps and runs the domain sweeps and the audit seal (`app.jobs.scheduler`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import AuditChain, seal_all
from app.jobs.settings import JobSettings
from app.jobs.sweeps import PeriodicSweeps
from app.logs import bind_job_request_id, current_request_id
from app.notify.outbox import NOTIFY_JOB
from app.notify.sender import Outcome, SubscribeMessageSender, deliver_by_id, drain

log = logging.getLogger(__name__)

QUEUE = "notify"
# Above this many new rows in one commit, send sweeps (one per batch) instead of one message
# per row: the request that published a policy push should not make ten thousand Redis calls.
FAN_OUT_PER_ROW_LIMIT = 200


REQUEST_ID_OPTION = "request_id"


class PromptRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, with idle workers asking for messages at least every
    `idle_poll_ms`.

    Dramatiq's Redis consumer polls an empty queue ever less often, up to the worker's timeout
    (one second): a message sent to a worker that had been idle waited up to a second before
    it started, half a second on average (measured as the start of the push drain after a
    publish, and the same holds for a queue-called notification). Redis has no push to the
    consumer here, so a shorter ceiling on the backoff is what brings the message sooner; an
    idle worker process then makes at most `1000 / idle_poll_ms` cheap calls a second per
    queue.
    """

    def __init__(self, *, idle_poll_ms: int, **options: Any) -> None:
        super().__init__(**options)
        self.idle_poll_ms = idle_poll_ms

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        return super().consume(queue_name, prefetch, min(timeout, self.idle_poll_ms))


class RequestIdPropagation(Middleware):
    """A message carries the request id of whoever sent it; its actor's log lines show it.

    Sent from a web request: that request's X-Request-ID. Sent by an actor (a retry, a
    follow-up drain): the id its own message carried, so a chain of jobs keeps the id of the
    request that started it. Sent by nothing of the kind (the sweep ticker): none.
    """

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int
    ) -> None:
        request_id = current_request_id()
        if request_id and REQUEST_ID_OPTION not in message.options:
            message.options[REQUEST_ID_OPTION] = request_id

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        bind_job_request_id(message.options.get(REQUEST_ID_OPTION))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        bind_job_request_id(None)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        bind_job_request_id(None)


class SweepTicker(Middleware):
    """In each worker process, a thread that enqueues `sweep_outbox` every interval.

    Every worker runs the thread, but a Redis SET NX with the interval as expiry lets only
    one of them enqueue per interval, however many workers and hosts there are.
    """

    def __init__(self, runner: DramatiqRunner) -> None:
        self._runner = runner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._tick, name="outbox-sweep-ticker", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _tick(self) -> None:
        interval = self._runner.settings.sweep_seconds
        while not self._stop.is_set():
            try:
                self._runner.sweep_if_elected()
            except Exception:
                log.exception("enqueueing the outbox sweep failed")
            self._stop.wait(interval)


class DramatiqRunner:
    """Sends jobs to Dramatiq workers; inside a worker, runs them for this app."""

    name = "dramatiq"

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        wechat: Callable[[], SubscribeMessageSender],
        settings: JobSettings,
        now_fn: Callable[[], dt.datetime],
        send_rate: Callable[[], bool],
        sweeps: PeriodicSweeps | None = None,
        audit_chain: AuditChain | None = None,
    ) -> None:
        if not settings.redis_url:
            raise RuntimeError('JOB_RUNNER="dramatiq" needs REDIS_URL')
        self.settings = settings
        self._session_factory = session_factory
        self._wechat = wechat
        self._now_fn = now_fn
        self._sweeps = sweeps
        # None: this runner leaves the audit log to another (tests of other jobs).
        self._audit_chain = audit_chain
        # Nothing here connects yet: an app whose Redis is down still starts and serves.
        self.redis = Redis.from_url(settings.redis_url)
        self.broker = PromptRedisBroker(
            url=settings.redis_url,
            namespace=f"{settings.namespace}:dramatiq",
            idle_poll_ms=settings.idle_poll_ms,
        )
        self.broker.add_middleware(RequestIdPropagation())
        # With a scheduler process (JOB_SCHEDULER=process) it enqueues the sweeps instead.
        if not settings.scheduler_owns_periodic_work:
            self.broker.add_middleware(SweepTicker(self))
        # The app's one gate of WeChat's quota (`app.jobs.send_gate`), the policy push's too.
        self.send_rate = send_rate
        self.deliver_notification = dramatiq.actor(
            actor_name="deliver_notification",
            queue_name=QUEUE,
            broker=self.broker,
            # The outbox has its own retries; these only cover a crash of the actor itself.
            max_retries=3,
            min_backoff=1_000,
            max_backoff=60_000,
            time_limit=int(settings.policy.lease_seconds * 1000),
        )(self._deliver_notification)
        self.sweep_outbox = dramatiq.actor(
            actor_name="sweep_outbox",
            queue_name=QUEUE,
            broker=self.broker,
            max_retries=0,
            time_limit=10 * 60 * 1000,
        )(self._sweep_outbox)
        # The `dramatiq app.jobs.worker` command takes the global broker.
        dramatiq.set_broker(self.broker)

    # -- sending side (web processes) ------------------------------------------------------

    def dispatch(self, kind: str, ids: list[int]) -> None:
        """Enqueue the actors for rows committed just now."""
        if kind != NOTIFY_JOB:
            log.warning("no job of this kind", extra={"job": kind})
            return
        if not ids:
            self.sweep_outbox.send()
        elif len(ids) <= FAN_OUT_PER_ROW_LIMIT:
            for outbox_id in ids:
                self.deliver_notification.send(outbox_id)
        else:
            for _ in range(math.ceil(len(ids) / self.settings.batch)):
                self.sweep_outbox.send()

    def sweep_if_elected(self) -> bool:
        """Enqueue a sweep unless another worker did within this interval."""
        interval = self.settings.sweep_seconds
        key = f"{self.settings.namespace}:outbox-sweep-tick"
        if self.redis.set(key, "1", nx=True, ex=interval):
            self.sweep_outbox.send()
            return True
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Nothing runs in this process; the broker's connections close with it."""

    # -- worker side -------------------------------------------------------------------------

    def acquire_send_slot(self) -> bool:
        """Take one slot of the global WeChat send rate; False when it is used up."""
        return self.send_rate()

    def _deliver_notification(self, outbox_id: int) -> None:
        # The send slot is taken before the row is claimed, as the policy push takes its
        # slots. Over the rate, the message waits in the broker for a later window; taken
        # after the claim, every message over the rate cost a claim, a reschedule and a commit,
        # again each second for as long as the backlog lasted. (A slot taken for a row that
        # then turns out not to need a send is a slot unused: the rate errs low, never high.)
        if not self.acquire_send_slot():
            self.deliver_notification.send_with_options(
                args=(outbox_id,), delay=self._over_the_rate_delay_ms(outbox_id)
            )
            return
        result = deliver_by_id(
            self._session_factory,
            self._wechat(),
            outbox_id,
            now_fn=self._now_fn,
            policy=self.settings.policy,
        )
        if result.next_attempt_at is not None:
            # Retry on time rather than at the next sweep; the sweep is the safety net.
            delay = result.next_attempt_at - self._now_fn()
            self.deliver_notification.send_with_options(
                args=(outbox_id,), delay=max(int(delay.total_seconds() * 1000), 0)
            )

    def _over_the_rate_delay_ms(self, outbox_id: int) -> int:
        """The policy's deferral, spread over a further window by the row's id, so the
        messages held back do not all come back in the same instant."""
        window_ms = self.settings.send_rate_window_seconds * 1000
        spread = (outbox_id * 7919) % 1000 / 1000  # a prime stride: neighbours land apart
        return int(self.settings.policy.deferral_seconds * 1000 + spread * window_ms)

    def _sweep_outbox(self) -> None:
        # The periodic sweep also chains the audit entries committed since the last one, and
        # runs the domain sweeps (leftover tickets, missed appointments) when they are due,
        # unless the scheduler process runs both (`app.jobs.scheduler`).
        if not self.settings.scheduler_owns_periodic_work:
            if self._audit_chain is not None:
                seal_all(self._session_factory, self._audit_chain)
            if self._sweeps is not None:
                self._sweeps.run_if_due()
        stats = drain(
            self._session_factory,
            self._wechat(),
            now_fn=self._now_fn,
            batch=self.settings.batch,
            policy=self.settings.policy,
            gate=self.acquire_send_slot,
        )
        if stats.claimed >= self.settings.batch and not stats[Outcome.DEFERRED]:
            # More is due: continue in another message so other workers can share the load.
            self.sweep_outbox.send()

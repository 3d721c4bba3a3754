"""Hall-screen events (calls) fanned out to every Server-Sent Events listener.

In-process by default: one broker per process, each listener gets its own queue. With Redis a
publish goes to a channel per hall and each process relays it to its own listeners, so a call
made in one gunicorn worker reaches screens connected to any other.

Events are published after the transaction that made them commits (`publish_after_commit`):
a screen never announces a call that was rolled back.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PENDING_KEY = "queue_events_pending"


class Listener:
    """One screen's subscription: iterate for events (None after `timeout` s of silence).

    It unregisters itself when closed or dropped, whether or not anyone ever iterated it: a
    response discarded unread (a HEAD request, a client gone before the first byte) never
    starts its body, and a generator's `finally` only runs once the generator has started.
    """

    def __init__(
        self, broker: LocalBroker, hall_id: int, inbox: queue.Queue[dict[str, Any]], timeout: float
    ) -> None:
        self._inbox = inbox
        self._timeout = timeout
        # Holds the broker and the inbox, never this object, so dropping it runs the finalizer.
        self._finalizer = weakref.finalize(self, broker._forget, hall_id, inbox)

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        return self

    def __next__(self) -> dict[str, Any] | None:
        if not self._finalizer.alive:
            raise StopIteration
        try:
            return self._inbox.get(timeout=self._timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._finalizer()


class LocalBroker:
    """Fan-out to this process's listeners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[int, set[queue.Queue[dict[str, Any]]]] = {}

    def publish(self, hall_id: int, payload: dict[str, Any]) -> None:
        self.deliver(hall_id, payload)

    def deliver(self, hall_id: int, payload: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners.get(hall_id, ()))
        for listener in listeners:
            try:
                listener.put_nowait(payload)
            except queue.Full:  # a stuck client loses events rather than memory
                log.warning("screen listener queue full", extra={"hall_id": hall_id})

    def listen(self, hall_id: int, *, timeout: float) -> Listener:
        """Events for a hall as they come; None after `timeout` seconds of silence (keep-alive).

        The listener is registered now, not when iteration starts, so nothing published after
        this call is missed.
        """
        inbox: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        with self._lock:
            self._listeners.setdefault(hall_id, set()).add(inbox)
        return Listener(self, hall_id, inbox, timeout)

    def listener_count(self, hall_id: int) -> int:
        """How many listeners the hall has in this process."""
        with self._lock:
            return len(self._listeners.get(hall_id, ()))

    def _forget(self, hall_id: int, inbox: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            listeners = self._listeners.get(hall_id)
            if listeners is not None:
                listeners.discard(inbox)
                if not listeners:
                    del self._listeners[hall_id]

    def close(self) -> None:
        """Nothing to release."""


class RedisBroker(LocalBroker):
    """Publish to Redis; one relay thread per process delivers to the local listeners."""

    SUBSCRIBE_TIMEOUT = 5.0
    # A subscriber only reads, so a connection silently dropped by a firewall or NAT would
    # leave every screen of this process deaf until a restart; a PING when idle this long
    # finds it, and redis-py reconnects and subscribes again.
    HEALTH_CHECK_SECONDS = 30

    def __init__(self, url: str, namespace: str = "yuhaoban") -> None:
        super().__init__()
        import redis

        # Named so `CLIENT LIST` tells the screen relays apart from other users of Redis.
        # redis-py connects on first use, so building the broker costs nothing.
        self._redis = redis.Redis.from_url(
            url,
            health_check_interval=self.HEALTH_CHECK_SECONDS,
            client_name=f"{namespace}:queue-events",
        )
        self.namespace = namespace
        self._prefix = f"{namespace}:queue:hall:"
        self._pubsub: Any = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._relay_lock = threading.Lock()

    def listen(self, hall_id: int, *, timeout: float) -> Listener:
        # The relay starts with the first screen, not with the app: an app that only publishes
        # (a worker, a CLI command) never subscribes, and no thread exists before gunicorn forks.
        self._start_relay()
        return super().listen(hall_id, timeout=timeout)

    def _start_relay(self) -> None:
        with self._relay_lock:
            if self._thread is not None:
                return
            self._pubsub = self._redis.pubsub()
            try:
                self._subscribe()
            except Exception:
                self._pubsub.close()
                self._pubsub = None
                raise
            self._thread = threading.Thread(target=self._relay, name="queue-events", daemon=True)
            self._thread.start()

    def _subscribe(self) -> None:
        """Subscribe to every hall's channel and wait until Redis confirms it.

        PSUBSCRIBE only sends the command; until Redis has processed it, a publish from another
        process reaches nobody here. Waiting makes `listen` keep its promise from the first
        screen on: nothing published after it returns is missed.
        """
        self._pubsub.psubscribe(self._prefix + "*")
        deadline = time.monotonic() + self.SUBSCRIBE_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=left)
            if message is not None and message["type"] == "psubscribe":
                return
        raise TimeoutError("redis did not confirm the screen-event subscription")

    def publish(self, hall_id: int, payload: dict[str, Any]) -> None:
        self._redis.publish(self._prefix + str(hall_id), json.dumps(payload, ensure_ascii=False))

    def _relay(self) -> None:
        while not self._stopped.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except Exception:
                if self._stopped.is_set():
                    return
                log.warning("redis pubsub error; retrying")
                self._stopped.wait(1.0)
                continue
            # Confirmations of re-subscribing after a reconnect and health-check pongs pass here.
            if not message or message.get("type") != "pmessage":
                continue
            channel = message["channel"].decode()
            try:
                hall_id = int(channel.rsplit(":", 1)[1])
                self.deliver(hall_id, json.loads(message["data"]))
            except (ValueError, IndexError):
                continue

    def close(self) -> None:
        # The relay thread owns the pubsub connection; closing it under the thread's read
        # would make that read fail, so stop the thread first.
        self._stopped.set()
        with self._relay_lock:
            if self._thread is not None:
                self._thread.join(timeout=5)
                self._pubsub.close()
        self._redis.close()


def make_broker(redis_url: str, namespace: str = "yuhaoban") -> LocalBroker:
    """A Redis broker when Redis is configured, the in-process one otherwise."""
    return RedisBroker(redis_url, namespace) if redis_url else LocalBroker()


def publish_after_commit(
    session: Session, broker: LocalBroker, hall_id: int, payload: dict[str, Any]
) -> None:
    """Publish `payload` once the session's transaction commits; drop it on rollback."""
    pending: list[tuple[LocalBroker, int, dict[str, Any]]] = session.info.setdefault(
        PENDING_KEY, []
    )
    pending.append((broker, hall_id, payload))
    if not session.info.get(PENDING_KEY + "_hooked"):
        session.info[PENDING_KEY + "_hooked"] = True
        event.listen(session, "after_commit", _flush_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)


def _flush_pending(session: Session) -> None:
    for broker, hall_id, payload in session.info.pop(PENDING_KEY, []):
        try:
            broker.publish(hall_id, payload)
        except Exception:
            log.exception("screen event publish failed", extra={"hall_id": hall_id})


def _drop_pending(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(PENDING_KEY, None)

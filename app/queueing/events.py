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
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PENDING_KEY = "queue_events_pending"


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

    def listen(self, hall_id: int, *, timeout: float) -> Iterator[dict[str, Any] | None]:
        """Events for a hall as they come; None after `timeout` seconds of silence (keep-alive).

        The listener is registered now, not when iteration starts, so nothing published after
        this call is missed.
        """
        inbox: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        with self._lock:
            self._listeners.setdefault(hall_id, set()).add(inbox)
        self._listening(hall_id)
        return self._drain(hall_id, inbox, timeout)

    def _drain(
        self, hall_id: int, inbox: queue.Queue[dict[str, Any]], timeout: float
    ) -> Iterator[dict[str, Any] | None]:
        try:
            while True:
                try:
                    yield inbox.get(timeout=timeout)
                except queue.Empty:
                    yield None
        finally:
            with self._lock:
                self._listeners.get(hall_id, set()).discard(inbox)

    def _listening(self, hall_id: int) -> None:
        """Hook for the Redis broker to subscribe to the hall's channel."""

    def close(self) -> None:
        """Nothing to release."""


class RedisBroker(LocalBroker):
    """Publish to Redis; one relay thread per process delivers to the local listeners."""

    def __init__(self, url: str, namespace: str = "yuhaoban") -> None:
        super().__init__()
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = f"{namespace}:queue:hall:"
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(self._prefix + "*")
        self._thread = threading.Thread(target=self._relay, name="queue-events", daemon=True)
        self._stopped = threading.Event()
        self._thread.start()

    def publish(self, hall_id: int, payload: dict[str, Any]) -> None:
        self._redis.publish(self._prefix + str(hall_id), json.dumps(payload, ensure_ascii=False))

    def _relay(self) -> None:
        while not self._stopped.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except Exception:
                log.warning("redis pubsub error; retrying")
                self._stopped.wait(1.0)
                continue
            if not message or message.get("type") != "pmessage":
                continue
            channel = message["channel"].decode()
            try:
                hall_id = int(channel.rsplit(":", 1)[1])
                self.deliver(hall_id, json.loads(message["data"]))
            except (ValueError, IndexError):
                continue

    def close(self) -> None:
        self._stopped.set()
        self._pubsub.close()


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

"""Batch sends from a process of their own, with the next batch following on the same wire.

Two things held a push worker's sends below the pace WeChat answers at (measured against the
emulator, with wrk's rate on as many connections as 100 %):

- The GIL. `BatchTransport` drives libcurl from Python: each time a transfer ends, its thread
  needs the GIL back to read the answer and start the next one. The worker's other drain loops
  claim and record batches in Python meanwhile, and a thread asking for the GIL waits up to the
  interpreter's switch interval (5 ms) while another holds it. From a thread alone, 93–99 %;
  beside one thread of the same process busy half the time, 66–69 %. A child process has a
  GIL of its own.
- The ends of batches. One batch of 50 on 8 connections runs its last requests on fewer and
  fewer of them, then the next batch waits for its loop's turn and commit: during a drain the
  wire was busy 91 % of the time, on 7 of 8 connections on average. Here the caller may hand
  the next batch over as soon as the one before has started (`on_ready_for_next`): it waits
  in the child, and its requests take each connection the one before frees.

`SenderProcess.post_many` keeps `BatchTransport.post_many`'s contract, and several threads may
call it at once: their batches go out in the order they came. The child (`serve_fd`, in this
interpreter) drives one `Wire` and talks to this process over a socket pair: a batch in, a
note when its first request has left, its exchanges when all are in. It exits
when this process's end closes, whether this process exited or died, and sends nothing more
then. When the child dies or stops answering, nothing tells which of its requests reached
WeChat: every request of every batch it held fails with `maybe_processed` True (the caller
counts them in doubt), the child is killed, and the next batch starts a new one.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import signal
import socket
import subprocess  # nosec B404  # starts this module's own child, no shell
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from wechat.batch_transport import Exchange, TransportSettings, Wire
from wechat.errors import TransportError

log = logging.getLogger(__name__)

# Seconds for a child to start and say it is ready.
START_SECONDS = 30.0
# Seconds allowed beyond the slowest a batch can take (each transfer's own time limit, one
# round of `connections` after another, behind the batches before it) before the child
# counts as stuck.
SLACK_SECONDS = 10.0
# The folder that holds the `wechat` package, for the child to import it from.
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent

# The child's program (`-m` would import this module twice: once as `wechat`'s, once as main).
_CHILD = "import sys; from wechat.batch_sender import serve_fd; serve_fd(int(sys.argv[1]))"

# An exchange on the wire between the processes: status, content type, body, seconds, and for a
# failure its message and whether the request may have reached WeChat.
_Wired = tuple[int, str, bytes, float, str | None, bool]


@dataclass
class _Pending:
    """A batch handed to the child, until its exchanges come back (None: the child was lost)."""

    size: int
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    exchanges: list[Exchange] | None = None
    lost: str = ""


class _Child:
    """One running child process, the connection to it, and the batches it holds."""

    def __init__(self, settings: TransportSettings) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(  # noqa: S603  # nosec B603  # this interpreter, own module
                [sys.executable, "-c", _CHILD, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                cwd=_PACKAGE_ROOT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        self.owner = os.getpid()
        self.pending: dict[int, _Pending] = {}
        self.gone = False  # its end of the connection closed: it holds nothing any more
        self.lock = threading.Lock()  # the connection's sending end, `pending` and `gone`
        try:
            self.connection.send(settings)
            ready = self.connection.poll(START_SECONDS) and self.connection.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop("did not start")
            raise TransportError("the batch sender did not start", maybe_processed=False)
        self.reader = threading.Thread(target=self._read, name="batch-sender-reader", daemon=True)
        self.reader.start()

    def alive(self) -> bool:
        return not self.gone and self.owner == os.getpid() and self.process.poll() is None

    def hand_over(
        self, key: int, url: str, bodies: list[bytes], connections: int
    ) -> _Pending | None:
        """The batch's pending answer, or None when the child was already gone (it surely
        sent none of it)."""
        pending = _Pending(len(bodies))
        with self.lock:
            if self.gone:
                return None
            self.pending[key] = pending
            self.connection.send((key, url, bodies, connections))
        return pending

    def held(self) -> int:
        """Requests of the batches handed over and not yet answered."""
        with self.lock:
            return sum(pending.size for pending in self.pending.values())

    def stop(self, why: str) -> None:
        """Kill the child; every batch it held is lost."""
        if self.owner == os.getpid() and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.connection.close()
        self._lose_all(why)

    def _read(self) -> None:
        try:
            while True:
                message = self.connection.recv()
                with self.lock:
                    pending = self.pending.get(message[1])
                    if message[0] == "done":
                        self.pending.pop(message[1], None)
                if pending is None:
                    continue
                if message[0] == "done":
                    pending.exchanges = [_exchange(wired) for wired in message[2]]
                    pending.started.set()
                    pending.done.set()
                else:
                    pending.started.set()
        except (EOFError, OSError):
            self._lose_all("the batch sender exited")

    def _lose_all(self, why: str) -> None:
        with self.lock:
            self.gone = True
            lost, self.pending = self.pending, {}
        for pending in lost.values():
            pending.lost = why
            pending.started.set()
            pending.done.set()


class SenderProcess:
    """POSTs batches like `BatchTransport`, from a child process started on the first batch."""

    def __init__(self, settings: TransportSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()  # starting and stopping the child
        self._child: _Child | None = None
        self._keys = itertools.count()

    def post_many(
        self,
        url: str,
        bodies: Sequence[bytes],
        *,
        connections: int,
        on_ready_for_next: Callable[[], None] | None = None,
    ) -> list[Exchange]:
        """POST each body to `url`, at most `connections` at a time; answers in order.

        `on_ready_for_next` is called once this batch's first request has left (or the batch
        failed): the next batch may then be handed over, and waits in the child for the
        connections this one frees."""
        if not bodies:
            if on_ready_for_next is not None:
                on_ready_for_next()
            return []
        connections = max(connections, 1)
        pending: _Pending | None = None
        for _ in range(2):  # a child found gone at the hand-over is replaced once
            try:
                child = self._running()
            except (OSError, TransportError) as error:  # nothing was handed over
                log.error("the batch sender could not start: %s", error)
                break
            # Each transfer may take connecting + reading (`BatchTransport`: twice the
            # timeout), one round of `connections` after another, behind what it holds.
            rounds = math.ceil((child.held() + len(bodies)) / connections)
            deadline = rounds * 2 * self._settings.timeout + SLACK_SECONDS
            try:
                pending = child.hand_over(next(self._keys), url, list(bodies), connections)
            except OSError as error:
                self._stop(child, f"could not hand the batch over: {error}")
                return _lost(len(bodies), str(error))
            if pending is not None:
                break
            self._stop(child, "the batch sender exited")
        if pending is None:
            if on_ready_for_next is not None:
                on_ready_for_next()
            failure = TransportError("the batch sender is not running", maybe_processed=False)
            return [Exchange(0, "", b"", 0.0, failure) for _ in bodies]
        give_up = time.monotonic() + deadline
        told = on_ready_for_next is None
        try:
            if pending.started.wait(deadline):
                told = True
                if on_ready_for_next is not None:
                    on_ready_for_next()
            if not pending.done.wait(max(give_up - time.monotonic(), 0.0)):
                self._stop(child, f"no answer in {deadline:.0f} s")
        finally:
            if not told and on_ready_for_next is not None:
                on_ready_for_next()
        if pending.exchanges is None:
            return _lost(len(bodies), pending.lost or "the batch sender was stopped")
        return pending.exchanges

    def close(self) -> None:
        """Stop the child (it would also stop on its own when this process exits)."""
        with self._lock:
            if self._child is not None:
                self._child.stop("closed")
                self._child = None

    def _running(self) -> _Child:
        with self._lock:
            if self._child is None or not self._child.alive():
                if self._child is not None:
                    self._child.stop("the batch sender exited")
                self._child = _Child(self._settings)
            return self._child

    def _stop(self, child: _Child, why: str) -> None:
        with self._lock:
            child.stop(why)
            if self._child is child:
                self._child = None


def _lost(size: int, why: str) -> list[Exchange]:
    failure = TransportError(f"batch sender lost: {why}", maybe_processed=True)
    return [Exchange(0, "", b"", 0.0, failure) for _ in range(size)]


def _exchange(wired: _Wired) -> Exchange:
    status, content_type, body, seconds, failure, maybe_processed = wired
    error = None if failure is None else TransportError(failure, maybe_processed=maybe_processed)
    return Exchange(status, content_type, body, seconds, error)


def _wired(exchange: Exchange) -> _Wired:
    failure = exchange.failure
    return (
        exchange.status,
        exchange.content_type,
        exchange.body,
        exchange.seconds,
        None if failure is None else failure.errmsg,
        True if failure is None else failure.maybe_processed,
    )


def serve(connection: Connection) -> None:
    """The child: send the batches the parent hands over, until the parent's end closes."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wire = Wire(connection.recv())
    connection.send("ready")
    parent = connection.fileno()
    try:
        while True:
            if not wire.busy():  # nothing to send: wait for the next batch
                wire.add(*connection.recv())
            started, done, handed_over = wire.step(also=(parent,))
            for key in started:
                connection.send(("started", key))
            for key, exchanges in done:
                connection.send(("done", key, [_wired(exchange) for exchange in exchanges]))
            while handed_over and connection.poll():
                wire.add(*connection.recv())
    except (EOFError, OSError):
        return  # the parent is gone: what it handed over is in doubt on its side


def serve_fd(fd: int) -> None:
    """The child's entry: serve the parent on the socket it passed down as `fd`."""
    serve(Connection(fd))

"""Many POSTs to the WeChat API at once, from one thread, through libcurl's multi interface.

`Wire` keeps the transfers of the batches it was given going, `connections` at a time, and
takes new batches while others run; `BatchTransport` sends one batch at a time through it from
the caller's thread, and `batch_sender` drives one in a child process.

A policy push drain sends a batch of subscribe messages at a time. Through urllib3 each send
cost the worker about 0.55 ms of CPU (Python writes the request, parses the status line and the
headers with the email package, and a thread pool hands every call over and back); libcurl
does that work in C and waits for all the batch's connections in one `poll`: about 0.2 ms per
message, measured against the emulator (which closes every connection, so that includes
setting one up). Single calls (login, tokens, phone numbers, codes) stay on `client._Transport`.

The settings are the ones the client's requests session resolved for the API's host (headers,
CA bundle or no verification, client certificate, proxy), so both paths reach WeChat the same
way.

Nothing is retried here: each request's answer, or the `TransportError` it failed with, goes
back to the caller, who decides. A request that failed before a byte of it was written
(resolving, connecting, the TLS handshake) surely never reached WeChat: `maybe_processed` is
False for it, as `client._may_have_arrived` says of urllib3's connect errors.

One residual difference from urllib3, which the caller's exactly-once accounting should know:
libcurl sends a request again, on a fresh connection, when a kept-alive connection it reused
closes before a single byte of the answer arrives (the usual cause is the server closing an
idle connection just as the request goes out, when nothing was processed). Connections are
reused for at most `MAX_CONNECTION_AGE` seconds, well inside common servers' keep-alive
timeouts, so that race stays rare; the emulator closes every connection, so it never arises
there.
"""

from __future__ import annotations

import io
import os
import select
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import certifi
import pycurl

from wechat.errors import TransportError

# Seconds a kept-alive connection is reused after its last transfer (libcurl's default is 118).
MAX_CONNECTION_AGE = 30


@dataclass(frozen=True)
class Exchange:
    """One request's outcome: WeChat's status, content type and body, or the failure; and
    libcurl's total seconds for it."""

    status: int
    content_type: str
    body: bytes
    seconds: float
    failure: TransportError | None = None


@dataclass(frozen=True)
class TransportSettings:
    """How to reach the API's host, as the client's requests session resolved it."""

    headers: Mapping[str, str]
    timeout: float
    # True: the CA bundle requests uses; False: no verification; a path: that bundle or folder.
    verify: bool | str
    # A client certificate: a file, or (certificate, key) files.
    cert: str | tuple[str, str] | None
    # The proxy URL for the API's host, or None for a direct connection.
    proxy: str | None


class BatchTransport:
    """POSTs bodies to one URL concurrently on kept-alive connections, one batch at a time."""

    def __init__(self, settings: TransportSettings) -> None:
        self._wire = Wire(settings)
        # libcurl handles are not for two threads at once: batches take turns.
        self._lock = threading.Lock()

    def post_many(
        self,
        url: str,
        bodies: Sequence[bytes],
        *,
        connections: int,
        on_ready_for_next: Callable[[], None] | None = None,
    ) -> list[Exchange]:
        """POST each body to `url`, at most `connections` at a time; answers in order.

        `on_ready_for_next` is called once the transport can take another batch: here, once
        this one has its answers (a child process queues the next one as soon as this one has
        started: `batch_sender`)."""
        with self._lock:
            self._wire.add(0, url, bodies, connections)
            finished: list[Exchange] | None = None
            try:
                while finished is None:
                    for _, exchanges in self._wire.step()[1]:
                        finished = exchanges
            finally:
                # Interrupted (a BaseException): no transfer of this batch stays on the multi.
                self._wire.abandon()
        if on_ready_for_next is not None:
            on_ready_for_next()
        return finished


class Wire:
    """The transfers of the batches added, `connections` at a time, in the order they came.

    One thread drives it by calling `step` while it is `busy`; batches may be added between
    steps, and a batch's requests start as soon as the previous batches' free a connection,
    so the connections are not left idle between one batch and the next.
    """

    def __init__(self, settings: TransportSettings) -> None:
        self._settings = settings
        headers = {name.lower(): (name, value) for name, value in settings.headers.items()}
        # libcurl asks for compressed answers itself when told to, and then decompresses them.
        self._encodings = headers.pop("accept-encoding", ("", None))[1]
        for own in ("content-type", "content-length", "connection"):
            headers.pop(own, None)
        self._headers = [f"{name}: {value}" for name, value in headers.values()]
        # JSON bodies; no "Expect: 100-continue" round trip before a larger one.
        self._headers += ["Content-Type: application/json", "Expect:"]
        self._multi = pycurl.CurlMulti()
        self._idle: list[pycurl.Curl] = []
        # (batch, index in it, url, body, connections) of every request not started yet.
        self._waiting: deque[tuple[int, int, str, bytes, int]] = deque()
        self._running: dict[pycurl.Curl, tuple[int, int, io.BytesIO]] = {}
        # Per batch: its answers so far, and how many it has.
        self._batches: dict[int, tuple[dict[int, Exchange], int]] = {}
        self._empty: list[int] = []  # batches of no request: done at the next step

    def add(self, batch: int, url: str, bodies: Sequence[bytes], connections: int) -> None:
        """Queue a batch's requests behind those already queued (`batch`: the caller's key)."""
        if not bodies:
            self._empty.append(batch)
            return
        # Connections kept open for reuse: as many as run at once.
        self._multi.setopt(pycurl.M_MAXCONNECTS, max(connections, 1))
        self._batches[batch] = ({}, len(bodies))
        self._waiting.extend(
            (batch, index, url, body, max(connections, 1)) for index, body in enumerate(bodies)
        )

    def busy(self) -> bool:
        return bool(self._batches or self._empty)

    def step(
        self, also: Sequence[int] = (), wait: float = 1.0
    ) -> tuple[list[int], list[tuple[int, list[Exchange]]], bool]:
        """Start the requests the connections allow, let libcurl work, then wait (at most
        `wait` seconds) until it or a file descriptor of `also` has something to do.

        Returns the batches whose first request started during this step, the batches that
        got all their answers (in order), and whether one of `also` is ready to read."""
        started: list[int] = list(self._empty)
        done: list[tuple[int, list[Exchange]]] = [(batch, []) for batch in self._empty]
        self._empty.clear()
        while self._waiting and len(self._running) < self._waiting[0][4]:
            batch, index, url, body, _ = self._waiting.popleft()
            handle, buffer = self._handle(), io.BytesIO()
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.POSTFIELDS, body)
            handle.setopt(pycurl.WRITEDATA, buffer)
            self._multi.add_handle(handle)
            self._running[handle] = (batch, index, buffer)
            if index == 0:
                started.append(batch)
        self._perform()
        for handle, error in self._finished():
            batch, index, buffer = self._running.pop(handle)
            answers, size = self._batches[batch]
            answers[index] = Exchange(
                status=int(handle.getinfo(pycurl.RESPONSE_CODE)),
                content_type=str(handle.getinfo(pycurl.CONTENT_TYPE) or ""),
                body=buffer.getvalue(),
                seconds=float(handle.getinfo(pycurl.TOTAL_TIME)),
                failure=None if error is None else _failure(handle, error),
            )
            self._multi.remove_handle(handle)
            self._idle.append(handle)
            if len(answers) == size:
                del self._batches[batch]
                done.append((batch, [answers[i] for i in range(size)]))
        ready = False
        if done or (self._waiting and len(self._running) < self._waiting[0][4]):
            wait = 0.0  # answers to hand back, or connections free for waiting requests
        if self._running or also:
            ready = self._wait(also, wait)
        return started, done, ready

    def abandon(self) -> None:
        """Drop every batch: running transfers are stopped, waiting ones never start."""
        for handle in self._running:
            self._multi.remove_handle(handle)
            handle.close()
        self._running.clear()
        self._waiting.clear()
        self._batches.clear()
        self._empty.clear()

    def _perform(self) -> None:
        while self._multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass

    def _finished(self) -> list[tuple[pycurl.Curl, str | None]]:
        """The transfers that ended since the last call: (handle, None or libcurl's error)."""
        ended: list[tuple[pycurl.Curl, str | None]] = []
        while True:
            queued, succeeded, failed = self._multi.info_read()
            ended += [(handle, None) for handle in succeeded]
            ended += [(handle, f"curl error {code}: {message}") for handle, code, message in failed]
            if not queued:
                return ended

    def _wait(self, also: Sequence[int], wait: float) -> bool:
        """Wait for libcurl's sockets or its next timeout, or for one of `also` to read."""
        timeout_ms = self._multi.timeout()
        if timeout_ms >= 0:
            wait = min(wait, timeout_ms / 1000)
        reads, writes, errors = self._multi.fdset()
        if self._running and not (reads or writes or errors):
            # libcurl is at something no socket shows (its docs: then call it again soon).
            # Waited for the full `wait`, one transfer in fifty stalled a second.
            wait = min(wait, 0.001)
        readable = select.select([*reads, *also], writes, errors, wait)[0]
        return any(fd in readable for fd in also)

    def _handle(self) -> pycurl.Curl:
        if self._idle:
            return self._idle.pop()
        handle = pycurl.Curl()
        settings = self._settings
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.HTTPHEADER, self._headers)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(settings.timeout * 1000))
        # The whole exchange: connecting, then reading, each allowed `timeout` (as urllib3's).
        handle.setopt(pycurl.TIMEOUT_MS, int(settings.timeout * 2000))
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.MAXAGE_CONN, MAX_CONNECTION_AGE)
        if self._encodings is not None:
            handle.setopt(pycurl.ACCEPT_ENCODING, self._encodings)
        # An empty proxy also stops libcurl from reading one from the environment itself.
        handle.setopt(pycurl.PROXY, settings.proxy or "")
        _set_verification(handle, settings.verify)
        if isinstance(settings.cert, str):
            handle.setopt(pycurl.SSLCERT, settings.cert)
        elif settings.cert is not None:
            handle.setopt(pycurl.SSLCERT, settings.cert[0])
            handle.setopt(pycurl.SSLKEY, settings.cert[1])
        return handle


def _set_verification(handle: pycurl.Curl, verify: bool | str) -> None:
    if verify is False:
        handle.setopt(pycurl.SSL_VERIFYPEER, 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 0)
    elif verify is True:
        handle.setopt(pycurl.CAINFO, certifi.where())
    elif os.path.isdir(verify):
        handle.setopt(pycurl.CAPATH, verify)
    else:
        handle.setopt(pycurl.CAINFO, verify)


def _failure(handle: pycurl.Curl, error: str) -> TransportError:
    # A failure before any byte of the request was written (name lookup, connecting, the TLS
    # handshake) cannot have reached WeChat. (The pre-transfer time is no test: libcurl sets it
    # on a refused connection too.)
    written: Any = handle.getinfo(pycurl.REQUEST_SIZE)
    return TransportError(error, maybe_processed=bool(written))

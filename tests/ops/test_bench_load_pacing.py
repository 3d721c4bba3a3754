"""A paced load from `bench/loadgen.py` sends the rate it offers, however long answers take,
and never leaves a long silence.

Each connection used to pause about connections / rate after every answer, so the rate sent
fell short of the rate offered by the answers' own time: the queue bench's paced phase offered
243 takes/s and sent 185, and its p99 was read as that of a load it never sent.

The schedule's gaps are exponential (a Poisson stream). Unbounded, a rare long gap, added up
over the connections waiting their turn, kept one of the rush's connections idle past the
balancer's keep-alive timeout (5 s): HAProxy closed it, and wrk counted a read error where no
request had failed (CI, the rush's take at 6/s over 16 connections). The gaps stop at four
intervals now, which leaves the stream's bursts as they were.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from loadgen import Request, run_wrk

ANSWER_SECONDS = 0.06

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class SlowAnswers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(ANSWER_SECONDS)
        # One write: headers and body sent apart meet Nagle and delayed ACKs (40 ms stalls).
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def log_message(self, format: str, *args: object) -> None:
        pass


class RecordedArrivals(BaseHTTPRequestHandler):
    """Answers at once and notes when each request arrived (`server.arrivals`)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.arrivals.append(time.monotonic())  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # wrk opens its 32 connections at once: beyond the default backlog of 5, connections
    # wait for the SYN to be sent again (a second and more) and the load starts short.
    request_queue_size = 64
    daemon_threads = True


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[Server]:
    server = Server(("127.0.0.1", 0), handler)
    server.arrivals = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def slow_server() -> Iterator[str]:
    with serving(SlowAnswers) as server:
        yield url(server)


def test_a_paced_load_sends_the_rate_it_offers_while_answers_take_time(slow_server: str) -> None:
    # 32 connections at 200/s: a pause of 160 ms after each 60 ms answer sent ~140/s. The
    # schedule's gaps are random (LuaJIT's generator, unseeded, draws the same ones each run);
    # the bounds leave room for three seconds of a Poisson stream (600 +- 25).
    result = run_wrk(slow_server, [Request("GET", "/")], connections=32, seconds=3, rate=200)

    assert result.refused == 0
    assert 170 <= result.rate <= 230, result.rate


def test_a_paced_load_leaves_almost_no_gap_longer_than_five_intervals() -> None:
    # 400/s answered at once: every request leaves at its scheduled time, and the gaps between
    # arrivals are the schedule's, plus the threads' waking. Unbounded, 2,000 exponential gaps
    # hold about 14 beyond five intervals (e^-5 each; this generator's draws gave 21-24 here).
    # Bounded at four, a gap beyond five is the machine's doing alone: a stalled thread on a
    # busy machine (up to 7 seen with three CPU burners beside it; one gap of 16.7 ms failed
    # a test that allowed no gap beyond six intervals, in a CI run of the other suite).
    interval = 1 / 400
    with serving(RecordedArrivals) as server:
        result = run_wrk(url(server), [Request("GET", "/")], connections=8, seconds=5, rate=400)
        arrivals = sorted(server.arrivals)  # type: ignore[attr-defined]

    assert result.refused == 0
    assert len(arrivals) > 1800
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    long_gaps = [round(gap * 1000, 1) for gap in gaps if gap > 5 * interval]
    assert len(long_gaps) <= 10, long_gaps

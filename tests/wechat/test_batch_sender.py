"""Batches sent from a child process (`wechat.batch_sender.SenderProcess`).

The contract is `BatchTransport`'s (tests/wechat/test_batch_send.py runs through both); here
what only the child has: batches handed over while another is on the wire go out behind it,
each answered in its own order; the caller is told when the next batch may follow; a child
that dies or hangs leaves every request it held as maybe processed, and the next batch gets a
new child; a child whose parent is gone exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from tests.support.http import served
from wechat import batch_sender
from wechat.batch_sender import SenderProcess
from wechat.batch_transport import BatchTransport, TransportSettings

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A WeChat stand-in that answers each body with itself, and can be made to stall."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.stall = threading.Event()  # set: requests wait until it is cleared
        self.arrived = threading.Event()  # a request arrived while stalling

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.bodies.append(body)
        if self.stall.is_set():
            self.arrived.set()
            while self.stall.is_set():
                time.sleep(0.01)
        answer = Response(body, content_type="application/json")
        return answer(environ, start_response)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    wechat = Recorder()
    with served(wechat, poll_interval=0.05) as url:
        yield wechat, url
        wechat.stall.clear()


@pytest.fixture
def sender() -> Iterator[SenderProcess]:
    made = SenderProcess(
        TransportSettings(headers={}, timeout=2.0, verify=False, cert=None, proxy=None)
    )
    yield made
    made.close()


def _bodies(batch: str, count: int) -> list[bytes]:
    return [json.dumps({"batch": batch, "n": n}).encode() for n in range(count)]


def _child_pid(sender: SenderProcess) -> int:
    child = sender._child
    assert child is not None
    return child.process.pid


def test_batches_handed_over_while_one_is_on_the_wire_are_answered_each_in_order(
    sender: SenderProcess, recorder: tuple[Recorder, str]
) -> None:
    wechat, url = recorder
    turn = threading.Lock()
    answers: dict[str, list[bytes]] = {}
    told: list[str] = []

    def loop(name: str) -> None:
        with ExitStack() as held:
            held.enter_context(turn)

            def ready() -> None:
                told.append(name)
                held.close()

            exchanges = sender.post_many(
                url, _bodies(name, 30), connections=4, on_ready_for_next=ready
            )
        answers[name] = [exchange.body for exchange in exchanges]

    loops = [threading.Thread(target=loop, args=(name,)) for name in "abcd"]
    for thread in loops:
        thread.start()
    for thread in loops:
        thread.join(30)

    assert sorted(told) == list("abcd")  # each caller told once
    for name in "abcd":
        assert answers[name] == _bodies(name, 30)
    # Every request reached WeChat once.
    assert sorted(wechat.bodies) == sorted(b for name in "abcd" for b in _bodies(name, 30))


def test_the_next_batch_may_follow_once_this_one_has_started_not_when_it_is_answered(
    sender: SenderProcess, recorder: tuple[Recorder, str]
) -> None:
    wechat, url = recorder
    wechat.stall.set()
    told = threading.Event()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(
            sender.post_many(url, _bodies("a", 3), connections=2, on_ready_for_next=told.set)
        )
    )
    thread.start()
    # The batch is on the wire, unanswered: the caller may already hand the next one over.
    assert told.wait(10)
    assert wechat.arrived.wait(10)
    assert not result
    wechat.stall.clear()
    thread.join(10)
    assert [exchange.body for exchange in result[0]] == _bodies("a", 3)


def test_in_this_process_the_next_batch_may_follow_once_this_one_is_answered(
    recorder: tuple[Recorder, str],
) -> None:
    wechat, url = recorder
    transport = BatchTransport(
        TransportSettings(headers={}, timeout=2.0, verify=False, cert=None, proxy=None)
    )
    received_when_told: list[int] = []
    exchanges = transport.post_many(
        url,
        _bodies("a", 5),
        connections=2,
        on_ready_for_next=lambda: received_when_told.append(len(wechat.bodies)),
    )
    # Told once, and only after WeChat had every request of the batch.
    assert received_when_told == [5]
    assert [exchange.body for exchange in exchanges] == _bodies("a", 5)


def test_a_child_killed_mid_batch_leaves_every_request_maybe_processed_and_is_replaced(
    sender: SenderProcess, recorder: tuple[Recorder, str]
) -> None:
    wechat, url = recorder
    sender.post_many(url, _bodies("warm", 1), connections=1)
    first_child = _child_pid(sender)
    wechat.stall.set()
    killer = threading.Thread(
        target=lambda: wechat.arrived.wait(10) and os.kill(first_child, signal.SIGKILL)
    )
    killer.start()

    exchanges = sender.post_many(url, _bodies("lost", 4), connections=2)
    killer.join(10)
    wechat.stall.clear()

    assert len(exchanges) == 4
    for exchange in exchanges:
        assert exchange.failure is not None
        assert exchange.failure.maybe_processed
    # The next batch goes out from a new child.
    again = sender.post_many(url, _bodies("again", 3), connections=2)
    assert [exchange.body for exchange in again] == _bodies("again", 3)
    assert _child_pid(sender) != first_child


def test_a_child_that_stops_answering_is_killed_and_its_batch_counted_maybe_processed(
    recorder: tuple[Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = recorder
    monkeypatch.setattr(batch_sender, "SLACK_SECONDS", 0.5)
    sender = SenderProcess(
        TransportSettings(headers={}, timeout=0.2, verify=False, cert=None, proxy=None)
    )
    try:
        sender.post_many(url, _bodies("warm", 1), connections=1)
        stuck = _child_pid(sender)
        os.kill(stuck, signal.SIGSTOP)  # alive, answering nothing
        exchanges = sender.post_many(url, _bodies("stuck", 2), connections=2)
        assert all(e.failure is not None and e.failure.maybe_processed for e in exchanges)
        # Killed, not left behind: the pid is gone (reaped) or no longer this child.
        with pytest.raises(ProcessLookupError):
            os.kill(stuck, 0)
        again = sender.post_many(url, _bodies("again", 2), connections=2)
        assert [exchange.body for exchange in again] == _bodies("again", 2)
    finally:
        sender.close()


PARENT = """
import os, sys
from wechat.batch_sender import SenderProcess
from wechat.batch_transport import TransportSettings
sender = SenderProcess(TransportSettings({}, 2.0, False, None, None))
sender.post_many(sys.argv[1], [b"{}"], connections=1)
print(sender._child.process.pid, flush=True)
os._exit(0)  # dies without closing anything itself
"""


def _exited(pid: int) -> bool:
    """Whether the process is gone or a zombie (its parent, if any, has not reaped it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_a_child_whose_parent_died_exits(recorder: tuple[Recorder, str]) -> None:
    _, url = recorder
    parent = subprocess.run(
        [sys.executable, "-c", PARENT, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    child = int(parent.stdout.strip())
    deadline = time.monotonic() + 10
    while not _exited(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _exited(child)


def test_an_empty_batch_starts_no_child_and_tells_the_caller(sender: SenderProcess) -> None:
    told: list[bool] = []
    assert (
        sender.post_many(
            "http://127.0.0.1:9/", [], connections=4, on_ready_for_next=lambda: told.append(True)
        )
        == []
    )
    assert told == [True]
    assert sender._child is None


def test_a_child_that_cannot_start_leaves_every_request_surely_unsent(
    recorder: tuple[Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wechat, url = recorder
    monkeypatch.setattr(batch_sender, "_CHILD", "import sys; sys.exit(3)")
    sender = SenderProcess(
        TransportSettings(headers={}, timeout=2.0, verify=False, cert=None, proxy=None)
    )
    told: list[bool] = []
    exchanges = sender.post_many(
        url, _bodies("never", 3), connections=2, on_ready_for_next=lambda: told.append(True)
    )
    assert [e.failure is not None and not e.failure.maybe_processed for e in exchanges] == [
        True
    ] * 3
    assert told == [True]
    assert wechat.bodies == []

"""The balancer's retries (deploy/haproxy.cfg.template, HAProxy from Debian): a request that
reached an instance which then died is sent again elsewhere only when a repeat is harmless."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from scripts.prod_like import haproxy_config

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs haproxy (apt-get install haproxy)"
)


class _Instance(BaseHTTPRequestHandler):
    """An app instance that dies (closes the connection unanswered) on the first request
    carrying a given X-Probe, and answers every later one."""

    seen: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        probe = self.headers.get("X-Probe")
        if probe is None:  # the balancer's health check
            self._answer()
            return
        with self.lock:
            self.seen[probe] += 1
            first = self.seen[probe] == 1
        if first:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer()

    def _answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[str]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Instance) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port = _free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config(
            stats_socket=tmp_path / "haproxy.sock",
            bind=f"127.0.0.1:{port}",
            web_ports=[server.server_address[1] for server in servers],
        )
    )
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_post_that_reached_a_dying_instance_is_not_sent_again(balancer: str) -> None:
    # Calling the next number twice would skip a citizen: without a key naming the click (the
    # terminals send one) the clerk sees a 502 rather than a second call.
    answer = requests.post(
        f"{balancer}/api/v1/windows/1/call-next", headers={"X-Probe": "call"}, timeout=10
    )
    assert answer.status_code == 502
    assert _Instance.seen["call"] == 1


def test_a_post_with_an_idempotency_key_is_sent_again(balancer: str) -> None:
    answer = requests.post(
        f"{balancer}/api/v1/queue/tickets",
        headers={"X-Probe": "take", "Idempotency-Key": "phone-1"},
        json={},
        timeout=10,
    )
    assert answer.status_code == 200
    assert _Instance.seen["take"] == 2


def test_a_read_is_sent_again(balancer: str) -> None:
    answer = requests.get(f"{balancer}/api/v1/halls", headers={"X-Probe": "read"}, timeout=10)
    assert answer.status_code == 200
    assert _Instance.seen["read"] == 2

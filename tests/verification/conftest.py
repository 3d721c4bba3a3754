"""What the verification-client tests share: a settable clock and an emulator served over HTTP
(each test module makes its own `emulator`, with the people and accounts it needs)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from verification.emulator import Emulator, serve_in_thread


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # the client signs with the real clock

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    server, url = serve_in_thread(emulator=emulator)
    yield url
    server.shutdown()
    server.server_close()

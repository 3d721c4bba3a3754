"""Fixtures for the WeChat library: an emulator on loopback and clients that talk to it.

Names are prefixed (`emu`, `wx_client`) so they never shadow the app-level fixtures of
tests/conftest.py; nothing here imports the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support.wechat import APPID, OTHER_APPID, OTHER_SECRET, SECRET, START, DevApi, FakeClock
from wechat.client import WeChatClient
from wechat.emulator import Emulator, serve_in_thread
from wechat.tokens import MemoryTokenCache, TokenCache


@pytest.fixture(scope="session")
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def emu(fake_clock: FakeClock) -> Emulator:
    return Emulator(
        apps={APPID: SECRET, OTHER_APPID: OTHER_SECRET},
        pages=["pages/index/index", "pages/queue/ticket"],
        clock=fake_clock,
    )


@pytest.fixture(scope="session")
def emu_url(emu: Emulator) -> Iterator[str]:
    server, base_url = serve_in_thread("127.0.0.1", 0, emulator=emu)
    yield base_url
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fresh_emulator(emu: Emulator, fake_clock: FakeClock) -> None:
    """Every test starts with an empty emulator at the same instant."""
    emu.reset()
    fake_clock.now = START


@pytest.fixture
def dev(emu_url: str) -> DevApi:
    return DevApi(emu_url)


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff delays a client asked for, instead of sleeping them."""
    return []


@pytest.fixture
def make_client(
    emu_url: str, fake_clock: FakeClock, sleeps: list[float]
) -> Callable[..., WeChatClient]:
    """Build a client for the test app against the emulator; keyword overrides welcome."""

    def build(token_cache: TokenCache | None = None, **overrides: Any) -> WeChatClient:
        settings: dict[str, Any] = {
            "base_url": emu_url,
            "appid": APPID,
            "secret": SECRET,
            "timeout": 2.0,
            "sleep": sleeps.append,
            "clock": fake_clock,
        }
        settings.update(overrides)
        session = settings.pop("session", None) or requests.Session()
        return WeChatClient(session, token_cache=token_cache or MemoryTokenCache(), **settings)

    return build


@pytest.fixture
def wx_client(make_client: Callable[..., WeChatClient]) -> WeChatClient:
    return make_client()


@pytest.fixture
def proxied_client(make_client: Callable[..., WeChatClient], emu_url: str) -> WeChatClient:
    """A client for a host that does not resolve, whose session sends everything through a
    proxy: the emulator stands in for it (it serves the absolute URL a proxy is sent)."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": emu_url}
    return make_client(session=session, base_url="http://api.weixin.invalid")

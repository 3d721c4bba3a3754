"""The app's WeChat client: the token copy each process keeps, and its HTTP session."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests

from app.integrations.wechat import RecentToken, _http_session
from tests.support.wechat_app import TEST_APPID, TEST_SECRET
from wechat.client import WeChatClient
from wechat.emulator import Emulator, serve_in_thread
from wechat.tokens import AccessToken, MemoryTokenCache

DATA = {
    "thing1": "出口信用保险",
    "thing2": "番禺区商务局",
    "thing3": "至2026年12月31日",
    "thing4": "保费支持",
}


class CountingCache(MemoryTokenCache):
    """The shared cache (Redis or the database in the app), counting its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load(self) -> AccessToken | None:
        self.loads += 1
        return super().load()


@pytest.fixture
def wechat() -> Iterator[tuple[Emulator, str]]:
    """An emulator of its own: its forced refreshes revoke nobody else's token."""
    emulator = Emulator(apps={TEST_APPID: TEST_SECRET})
    server, base_url = serve_in_thread("127.0.0.1", 0, emulator=emulator)
    yield emulator, base_url
    server.shutdown()
    server.server_close()


def client(base_url: str, cache: object) -> WeChatClient:
    return WeChatClient(
        requests.Session(),
        base_url=base_url,
        appid=TEST_APPID,
        secret=TEST_SECRET,
        token_cache=cache,  # type: ignore[arg-type]
    )


def test_the_shared_token_is_read_at_most_once_a_second() -> None:
    shared = CountingCache()
    shared.refresh(lambda: AccessToken("t1", 1e12), is_fresh=lambda _: False)
    now = [100.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    recent = RecentToken(shared, seconds=1.0, clock=clock)

    reads = [recent.load(), recent.load()]
    now[0] += 0.5
    reads.append(recent.load())
    now[0] += 0.6
    reads.append(recent.load())

    assert [token.value if token else None for token in reads] == ["t1"] * 4
    assert shared.loads == 2
    refreshed = recent.refresh(lambda: AccessToken("t2", 1e12), is_fresh=lambda _: False)
    assert (refreshed.value, recent.load(), shared.loads) == ("t2", refreshed, 2)


def test_a_copy_revoked_by_another_process_is_replaced_and_the_message_sent_once(
    wechat: tuple[Emulator, str],
) -> None:
    emulator, base_url = wechat
    emulator.login(openid="o_recent_token")
    emulator.grant_subscription("o_recent_token", "policy_push", count=2)
    shared = MemoryTokenCache()
    worker = client(base_url, RecentToken(shared, seconds=3600))
    worker.send_subscribe_message("o_recent_token", "policy_push", DATA)

    # Another process forces a new token into the shared cache: the old one, still in the
    # worker's copy, is revoked.
    revoked = worker.access_token()
    answer = requests.post(
        f"{base_url}/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": TEST_APPID,
            "secret": TEST_SECRET,
            "force_refresh": True,
        },
        timeout=5,
    ).json()
    forced = AccessToken(answer["access_token"], time.time() + answer["expires_in"])
    shared.refresh(lambda: forced, is_fresh=lambda _: False)
    assert forced.value != revoked

    worker.send_subscribe_message("o_recent_token", "policy_push", DATA)

    assert len(emulator.sent_messages("o_recent_token")) == 2
    assert worker.access_token() == forced.value


def test_the_session_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")

    outside = _http_session("https://api.weixin.qq.com")
    local = _http_session("http://127.0.0.1:8765")

    assert not outside.trust_env
    assert outside.proxies["https"] == "http://proxy.example:3128"
    assert outside.verify == "/etc/ssl/bundle.pem"
    assert local.proxies == {}

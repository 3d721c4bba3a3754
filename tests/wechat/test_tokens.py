"""The access token: fetched once, shared, refreshed before expiry and replaced when refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import MetaData, create_engine

from tests.support.wechat import APPID, SECRET, START, DevApi, FakeClock
from wechat.client import WeChatClient
from wechat.errors import AccessTokenInvalid
from wechat.tokens import (
    AccessToken,
    MemoryTokenCache,
    RedisTokenCache,
    SqlTokenCache,
    TokenCache,
    define_token_table,
)

QUEUE_NEAR = {"character_string1": "A012", "number2": "3", "thing3": "番禺区政务服务中心"}


@pytest.fixture
def granted_user(dev: DevApi) -> str:
    openid = dev.login()["openid"]
    dev.grant(openid, "queue_near", count=5)
    return openid


def test_token_is_fetched_once_and_reused(wx_client: WeChatClient, dev: DevApi) -> None:
    assert wx_client.access_token() == wx_client.access_token()

    assert dev.calls("stable_token") == 1
    assert dev.stats()["tokens_issued"] == 1


def test_token_is_renewed_in_its_last_five_minutes(
    wx_client: WeChatClient, dev: DevApi, fake_clock: FakeClock
) -> None:
    first = wx_client.access_token()
    fake_clock.advance(7200 - 300 - 1)
    assert wx_client.access_token() == first
    assert dev.calls("stable_token") == 1

    fake_clock.advance(2)
    second = wx_client.access_token()

    assert second != first
    assert dev.stats()["tokens_issued"] == 2


def test_token_expired_by_wechat_clock_is_replaced_and_the_call_retried(
    make_client: Callable[..., WeChatClient],
    dev: DevApi,
    fake_clock: FakeClock,
    granted_user: str,
) -> None:
    # Our clock lags WeChat's: we still think the token fresh when WeChat says 42001.
    client = make_client(clock=lambda: START)
    stale = client.access_token()
    fake_clock.advance(7201)

    client.send_subscribe_message(granted_user, "queue_near", QUEUE_NEAR)

    assert client.access_token() != stale
    assert dev.stats()["messages_sent"] == 1


def test_token_revoked_by_another_server_is_replaced_without_forcing(
    wx_client: WeChatClient, dev: DevApi, emu_url: str, granted_user: str
) -> None:
    mine = wx_client.access_token()
    # Another deployment forces a refresh, which invalidates the token we hold.
    forced = requests.post(
        f"{emu_url}/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": SECRET,
            "force_refresh": True,
        },
        timeout=5,
    ).json()["access_token"]

    wx_client.send_subscribe_message(granted_user, "queue_near", QUEUE_NEAR)

    assert wx_client.access_token() == forced != mine
    # Theirs was the only new token: the normal mode already handed it to us.
    assert dev.stats()["tokens_issued"] == 2
    assert dev.stats()["messages_sent"] == 1


def test_refused_token_that_wechat_still_hands_out_is_force_refreshed(
    wx_client: WeChatClient, dev: DevApi, granted_user: str
) -> None:
    first = wx_client.access_token()
    dev.fault("subscribe_send", errcode=40001)

    wx_client.send_subscribe_message(granted_user, "queue_near", QUEUE_NEAR)

    assert wx_client.access_token() != first
    # The initial fetch, the normal re-fetch that returned the same token, the forced one.
    assert dev.calls("stable_token") == 3
    assert dev.calls("subscribe_send") == 2
    assert dev.stats()["messages_sent"] == 1


def test_token_refused_again_after_the_refresh_is_raised(
    wx_client: WeChatClient, dev: DevApi, granted_user: str
) -> None:
    dev.fault("subscribe_send", errcode=40001, times=2)

    with pytest.raises(AccessTokenInvalid):
        wx_client.send_subscribe_message(granted_user, "queue_near", QUEUE_NEAR)
    assert dev.calls("subscribe_send") == 2


def test_threads_of_one_process_share_one_fetch(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    dev.fault("stable_token", delay=0.3, times=8)
    client = make_client()

    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = set(pool.map(lambda _: client.access_token(), range(8)))

    assert len(tokens) == 1
    assert dev.calls("stable_token") == 1


def test_access_token_repr_hides_the_value() -> None:
    token = AccessToken(value="72_SECRETSECRETSECRET", expires_at=START)

    assert "SECRETSECRET" not in repr(token)


def _sqlite_cache(tmp_path: Path) -> SqlTokenCache:
    engine = create_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    metadata = MetaData()
    table = define_token_table(metadata)
    metadata.create_all(engine)
    return SqlTokenCache(engine, table, appid=APPID)


@pytest.fixture
def redis_cache() -> Iterator[RedisTokenCache]:
    redis = Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
    try:
        redis.ping()
    except RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"test:wechat:{id(redis)}"
    yield RedisTokenCache(redis, prefix, appid=APPID)
    redis.delete(f"{prefix}:{APPID}", f"{prefix}:{APPID}:lock")


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_clients_sharing_a_cache_share_the_token(
    kind: str,
    make_client: Callable[..., WeChatClient],
    dev: DevApi,
    fake_clock: FakeClock,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    cache: TokenCache
    if kind == "memory":
        cache = MemoryTokenCache()
    elif kind == "sqlite":
        cache = _sqlite_cache(tmp_path)
    else:
        cache = request.getfixturevalue("redis_cache")
    assert cache.load() is None

    first = make_client(token_cache=cache).access_token()
    second = make_client(token_cache=cache).access_token()

    assert first == second
    assert dev.calls("stable_token") == 1
    stored = cache.load()
    assert stored is not None and stored.value == first
    assert stored.expires_at == START + 7200


def test_sql_cache_returns_a_token_another_process_stored(tmp_path: Path) -> None:
    cache = _sqlite_cache(tmp_path)
    stored = AccessToken(value="stored-by-another-process", expires_at=START + 3600)
    cache.refresh(lambda: stored, is_fresh=lambda token: False)

    def must_not_fetch() -> AccessToken:
        raise AssertionError("fetched although a fresh token was stored")

    assert cache.refresh(must_not_fetch, is_fresh=lambda token: True) == stored

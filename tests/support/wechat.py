"""Helpers shared by the WeChat tests: test credentials, a fake clock, the dev API."""

from __future__ import annotations

from multiprocessing.queues import Queue
from threading import Barrier as BarrierType
from typing import Any

import requests
from redis import Redis
from sqlalchemy import MetaData, create_engine

from wechat.client import WeChatClient
from wechat.tokens import RedisTokenCache, SqlTokenCache, TokenCache, define_token_table

APPID = "wx1234567890abcdef"
SECRET = "secret-of-the-test-app"
OTHER_APPID = "wxfedcba0987654321"
OTHER_SECRET = "secret-of-another-app"
START = 1_700_000_000.0


class FakeClock:
    """A clock that only moves when a test moves it; shared by emulator and clients."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DevApi:
    """The emulator's `/_emulator/` endpoints, over HTTP as the app's dev mode uses them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def post(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.base_url}/_emulator/{path}", json=body, timeout=5)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def login(self, **body: Any) -> dict[str, str]:
        return self.post("login", **body)

    def phone_code(self, phone: str, **body: Any) -> str:
        return str(self.post("phone-code", phone=phone, **body)["code"])

    def grant(self, openid: str, template_id: str, count: int = 1) -> None:
        self.post("subscriptions", openid=openid, template_id=template_id, count=count)

    def fault(self, endpoint: str, **body: Any) -> None:
        self.post("faults", endpoint=endpoint, **body)

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get(f"{self.base_url}/_emulator/stats", timeout=5).json()
        return answer

    def calls(self, endpoint: str) -> int:
        return int(self.stats()["calls"][endpoint])

    def messages(self, touser: str | None = None) -> list[dict[str, Any]]:
        params = {"touser": touser} if touser else {}
        response = self.http.get(f"{self.base_url}/_emulator/messages", params=params, timeout=5)
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages


def open_token_cache(spec: tuple[str, ...], appid: str) -> TokenCache:
    """Build a token cache from a picklable spec: ("sql", url, schema) or ("redis", url, prefix)."""
    kind = spec[0]
    if kind == "sql":
        _, url, schema = spec
        table = define_token_table(MetaData(schema=schema or None))
        return SqlTokenCache(create_engine(url), table, appid=appid)
    if kind == "redis":
        _, url, prefix = spec
        return RedisTokenCache(Redis.from_url(url), prefix, appid=appid)
    raise ValueError(f"unknown cache kind {kind!r}")


def race_for_token(
    base_url: str,
    cache_spec: tuple[str, ...],
    start: BarrierType,
    results: Queue[tuple[str, str]],
) -> None:
    """Run in a spawned process: wait for the other racer, then ask for the access token."""
    try:
        client = WeChatClient(
            requests.Session(),
            base_url=base_url,
            appid=APPID,
            secret=SECRET,
            token_cache=open_token_cache(cache_spec, APPID),
        )
        start.wait(timeout=60)
        results.put(("ok", client.access_token()))
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise

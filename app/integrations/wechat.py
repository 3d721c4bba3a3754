"""The WeChat client of this app: the real API in production, the local emulator otherwise.

`WECHAT_API_BASE` is a URL (the real API, or an emulator started separately, as `make run`
does) or the word `emulator`, which starts an emulator on loopback inside this process the
first time the client is needed (tests, ad-hoc `flask run`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

import requests
from flask import Flask
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.db import Base, make_engine
from app.extensions import current_flask_app
from app.observability.metrics import observe_wechat_call
from wechat.client import WeChatClient
from wechat.emulator import Emulator, serve_in_thread
from wechat.tokens import (
    AccessToken,
    MemoryTokenCache,
    RedisTokenCache,
    SqlTokenCache,
    TokenCache,
    define_token_table,
)

log = logging.getLogger(__name__)

# Registered in the app's metadata so Alembic creates it with the rest of the schema.
wechat_token_table = define_token_table(Base.metadata)

_lock = threading.Lock()
_emulators: dict[tuple[str, int], str] = {}


def start_local_emulator(appid: str, secret: str, port: int) -> str:
    """Serve the emulator on loopback once per process (and port); returns its base URL."""
    key = (appid, port)
    if key not in _emulators:
        _server, base_url = serve_in_thread(
            "127.0.0.1", port, emulator=Emulator(apps={appid: secret})
        )
        _emulators[key] = base_url
        log.info("wechat emulator listening", extra={"base_url": base_url})
    return _emulators[key]


class RecentToken:
    """A shared token cache read at most once a second by this process.

    The client reads the token before every call, which from Redis or the database is a
    round trip per message (a push worker sends hundreds a second). A copy read within the
    second is as good: a token another process has meanwhile replaced by a forced refresh
    is refused with 40001, on which the client replaces it through `refresh`, which always
    goes to the shared cache under its lock and updates this copy.
    """

    def __init__(
        self,
        shared: TokenCache,
        seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._seconds = seconds
        self._clock = clock
        # One tuple, replaced whole: threads of the process read and write it without a lock.
        self._copy: tuple[AccessToken | None, float] = (None, 0.0)

    def load(self) -> AccessToken | None:
        """The token read from the shared cache within the last `seconds`, else read now."""
        token, until = self._copy
        if token is None or self._clock() >= until:
            token = self._shared.load()
            self._copy = (token, self._clock() + self._seconds)
        return token

    def refresh(
        self, fetch: Callable[[], AccessToken], *, is_fresh: Callable[[AccessToken], bool]
    ) -> AccessToken:
        """The shared cache's refresh, under its lock; keeps the result."""
        token = self._shared.refresh(fetch, is_fresh=is_fresh)
        self._copy = (token, self._clock() + self._seconds)
        return token


def _token_cache(app: Flask) -> TokenCache:
    choice = app.config.get("WECHAT_TOKEN_CACHE") or (
        "redis" if app.config["REDIS_URL"] else "database"
    )
    if choice == "redis":
        return RecentToken(
            RedisTokenCache(Redis.from_url(app.config["REDIS_URL"]), key_prefix="wechat:token")
        )
    if choice == "database":
        return RecentToken(SqlTokenCache(_token_engine(app), wechat_token_table))
    return MemoryTokenCache()


def _token_engine(app: Flask) -> Engine:
    """Where the database token cache lives: the app's database, except on SQLite.

    SQLite has one writer per file, and a request's transaction holds that lock from its first
    statement (app/db.py: BEGIN IMMEDIATE); a token refresh in the same file, during a request
    that needs the token, would wait on its own request until the busy timeout. On SQLite
    the cache therefore takes a file of its own beside the database (shared by the processes
    using that database, as the table would be).
    """
    engine: Engine = app.extensions["db"].engine
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return engine
    database = engine.url.database
    if database == ":memory:":
        return engine  # one connection per thread anyway: nothing else can hold its lock
    side = make_engine(f"sqlite:///{database}.wechat-tokens")
    # Another process may create it between the check and the CREATE.
    with contextlib.suppress(OperationalError):
        wechat_token_table.create(side, checkfirst=True)
    return side


def _http_session(base_url: str) -> requests.Session:
    """A session that takes the proxy and CA bundle settings from the environment once.

    requests otherwise re-reads the whole environment on every call (about 0.1 ms of CPU per
    message, which a push worker sending hundreds a second feels). NO_PROXY is applied to
    the API's host here as requests would apply it per call.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    return session


def _build_client(app: Flask) -> WeChatClient:
    base_url = app.config["WECHAT_API_BASE"]
    if base_url == "emulator":
        base_url = start_local_emulator(
            app.config["WECHAT_APPID"],
            app.config["WECHAT_SECRET"],
            app.config["WECHAT_EMULATOR_PORT"],
        )
    return WeChatClient(
        _http_session(base_url),
        base_url=base_url,
        appid=app.config["WECHAT_APPID"],
        secret=app.config["WECHAT_SECRET"],
        token_cache=_token_cache(app),
        timeout=app.config["WECHAT_TIMEOUT_SECONDS"],
        batch_process=app.config["WECHAT_BATCH_PROCESS"],
        observe=observe_wechat_call,
    )


def init_wechat(app: Flask) -> None:
    app.extensions["wechat"] = None  # built on first use: CLI commands rarely need it


def get_wechat(app: Flask | None = None) -> WeChatClient:
    """The app's WeChat client, built on first use."""
    app = app or current_flask_app()
    client: WeChatClient | None = app.extensions.get("wechat")
    if client is None:
        with _lock:
            client = app.extensions.get("wechat")
            if client is None:
                client = app.extensions["wechat"] = _build_client(app)
    return client

"""The WeChat client of this app: the real API in production, the local emulator otherwise.

`WECHAT_API_BASE` is a URL (the real API, or an emulator started separately, as `make run`
does) or the word `emulator`, which starts an emulator on loopback inside this process the
first time the client is needed (tests, ad-hoc `flask run`).
"""

from __future__ import annotations

import logging
import threading

import requests
from flask import Flask, current_app
from redis import Redis

from app.db import Base
from wechat.client import WeChatClient
from wechat.emulator import Emulator, serve_in_thread
from wechat.tokens import (
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


def _token_cache(app: Flask) -> TokenCache:
    choice = app.config.get("WECHAT_TOKEN_CACHE") or (
        "redis" if app.config["REDIS_URL"] else "database"
    )
    if choice == "redis":
        return RedisTokenCache(Redis.from_url(app.config["REDIS_URL"]), key_prefix="wechat:token")
    if choice == "database":
        return SqlTokenCache(app.extensions["db"].engine, wechat_token_table)
    return MemoryTokenCache()


def _build_client(app: Flask) -> WeChatClient:
    base_url = app.config["WECHAT_API_BASE"]
    if base_url == "emulator":
        base_url = start_local_emulator(
            app.config["WECHAT_APPID"],
            app.config["WECHAT_SECRET"],
            app.config["WECHAT_EMULATOR_PORT"],
        )
    return WeChatClient(
        requests.Session(),
        base_url=base_url,
        appid=app.config["WECHAT_APPID"],
        secret=app.config["WECHAT_SECRET"],
        token_cache=_token_cache(app),
        timeout=app.config["WECHAT_TIMEOUT_SECONDS"],
    )


def init_wechat(app: Flask) -> None:
    app.extensions["wechat"] = None  # built on first use: CLI commands rarely need it


def get_wechat(app: Flask | None = None) -> WeChatClient:
    """The app's WeChat client, built on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    client: WeChatClient | None = app.extensions.get("wechat")
    if client is None:
        with _lock:
            client = app.extensions.get("wechat")
            if client is None:
                client = app.extensions["wechat"] = _build_client(app)
    return client

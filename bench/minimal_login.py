"""The floor for login: a minimal hand-written WeChat login, outside the product.

Flask, a psycopg_pool connection pool, requests and PyJWT, no ORM, no schema library, no
limiter: `POST /login` with `{"code"}` calls the WeChat (emulator's) jscode2session over one
kept-alive HTTP session, upserts the user by openid in one statement (`INSERT ... ON CONFLICT
(openid) DO UPDATE ... RETURNING id`), signs an HS256 JWT and answers 200 with it. A refused
code answers 401. Its table (`minimal_login_users`) is its own, in the bench's database;
`create_tables` makes it. `bench/login.py` serves it with the same gunicorn settings as the
product (`bench.minimal_login:app`) and compares the two.

It answers `Server-Timing: app;dur=<ms>, wechat;dur=<ms>` (one header: wrk's Lua keeps the last
header of a name), the second being the jscode2session round trip measured inside the server.

    MINIMAL_LOGIN_DSN=postgresql://postgres@127.0.0.1:5432/yhb_login \
    MINIMAL_LOGIN_WECHAT=http://127.0.0.1:8765 MINIMAL_LOGIN_APP=appid:secret \
        gunicorn -k gthread --threads 4 bench.minimal_login:app
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import requests
from flask import Flask, g, request
from psycopg_pool import ConnectionPool

# gunicorn imports this file as `bench.<name>`, its bench script as a top-level module: either
# way its sibling modules are found beside it, as every bench script finds them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from floors import ServerTiming, libpq_url, make_tables

POOL_SIZE = int(os.environ.get("MINIMAL_LOGIN_POOL", "8"))  # one per gunicorn thread
SECRET = "minimal-login-bench-secret-0123456789abcdef"  # nosec B105  # a bench's own key

SCHEMA = """
CREATE TABLE IF NOT EXISTS minimal_login_users (
    id bigserial PRIMARY KEY,
    openid varchar(64) NOT NULL UNIQUE,
    session_key varchar(64) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now()
);
"""

UPSERT = (
    "INSERT INTO minimal_login_users (openid, session_key) VALUES (%s, %s)"
    " ON CONFLICT (openid) DO UPDATE SET session_key = excluded.session_key,"
    " last_login_at = now() RETURNING id"
)


def create_tables(url: str) -> None:
    make_tables(url, SCHEMA, "minimal_login_users")


app = Flask(__name__)
# gunicorn imports this module in each worker (no --preload): one pool and session per process.
DSN = libpq_url("MINIMAL_LOGIN_DSN")
pool = ConnectionPool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, open=True) if DSN else None
wechat = requests.Session()
wechat.trust_env = False
WECHAT_BASE = os.environ.get("MINIMAL_LOGIN_WECHAT", "")
APPID, _, APP_SECRET = os.environ.get("MINIMAL_LOGIN_APP", ":").partition(":")


@app.post("/login")
def login() -> tuple[dict[str, Any], int]:
    code = request.get_json()["code"]
    started = time.perf_counter()
    answer = wechat.get(
        f"{WECHAT_BASE}/sns/jscode2session",
        params={
            "appid": APPID,
            "secret": APP_SECRET,
            "js_code": code,
            "grant_type": "authorization_code",
        },
        timeout=5,
    ).json()
    g.wechat_ms = (time.perf_counter() - started) * 1000
    if answer.get("errcode"):
        return {"code": "WECHAT_CODE_INVALID", "errcode": answer["errcode"]}, 401
    assert pool is not None
    with pool.connection() as conn:  # commits when the block ends, rolls back on an error
        upserted = conn.execute(UPSERT, (answer["openid"], answer["session_key"])).fetchone()
        assert upserted is not None  # an upsert with RETURNING always returns its row
        [user_id] = upserted
    now = int(time.time())
    token = jwt.encode(
        {"sub": f"user:{user_id}", "iat": now, "exp": now + 900, "jti": uuid.uuid4().hex},
        SECRET,
        algorithm="HS256",
    )
    return {"access_token": token, "token_type": "Bearer", "expires_in": 900}, 200


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _wechat_timing() -> str:
    wechat_ms = g.get("wechat_ms")
    return "" if wechat_ms is None else f"wechat;dur={wechat_ms:.3f}"


app.wsgi_app = ServerTiming(app.wsgi_app, _wechat_timing)  # type: ignore[method-assign]

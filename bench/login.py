# ruff: noqa: E501  (printed tables read better unwrapped)
"""Benchmark: mini-program login (and token refresh) against a minimal hand-written login, wrk.

Two gunicorn servers with the same settings (`bench/servers.py`: gthread, 2 workers x 4 threads)
on the same PostgreSQL database, and the WeChat emulator standing in for api.weixin.qq.com:

- the product (`wsgi:app`), `POST /api/v1/auth/wechat/login`: the per-address login limit
  (Redis), code2Session over HTTP, the user's upsert, its sealed session key, a new login family
  and refresh token, the access token, the audit entry; and `POST /api/v1/auth/refresh`
  (rotation with reuse detection, audit);
- the floor, `bench/minimal_login.py`: Flask, a psycopg pool, requests and PyJWT: jscode2session
  over a kept-alive session, one upsert by openid, an HS256 JWT; its own table;
- the emulator's jscode2session alone, straight from wrk: the round trip both logins pay.

Every request carries a login code of its own (codes are single-use: they are minted
beforehand, in this process, which serves the emulator), about half of them for a user who
logged in before, and an `X-Forwarded-For` address of its own (the product runs behind one
proxy, `PROXY_COUNT=1`), so the product's 20/minute login limit counts in Redis and never
refuses. Refresh tokens are minted beforehand the same way, one per request.

Phase 1, one client (wrk -c1), interleaved rounds: the server's time (`Server-Timing: app;dur=`)
of the product's login minus its jscode2session round trip measured inside the server. That
round trip is read per request from `Server-Timing: wechat;dur=` when wrk can see it, otherwise
as the mean of the product's own `yuhaoban_wechat_call_duration_seconds` histogram over the
run (GET /metrics before and after, all workers: PROMETHEUS_MULTIPROC_DIR). Phase 2, 16
connections, interleaved rounds: throughput and latency of the three, and the refresh.

Production-like, and says so: PostgreSQL, the limiter on Redis (`--redis-url`, DB 12),
INFO JSON logs (to /tmp, as a log shipper would read them), gunicorn gthread.

Target: the product's login within 3 ms of server time beyond the jscode2session round trip
(median of the rounds' p50, one client).

    .venv/bin/python bench/login.py [--rounds 3] [--seconds 5] [--connections 16]

DATABASE_URL (PostgreSQL) names the database; without it a fresh one is made and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Request, Result, require_wrk, run_wrk
from servers import (
    bench_database,
    clean_up_on_sigterm,
    drop_database,
    free_port,
    migrate,
    start_gunicorn,
    wait_until_up,
)

from wechat.emulator import Emulator, serve_in_thread

APPID, SECRET = "wx_bench_yuhaoban", "bench-wechat-secret"
TARGET_BEYOND_MS = 3.0
THREADS = 4
# Codes minted per second of a run, above the fastest rate each can reach here.
EMULATOR_CODES_PER_SECOND = 4000
LOGIN_CODES_PER_SECOND = 1500
REFRESH_TOKENS_PER_SECOND = 1200
_WECHAT_SUM = re.compile(
    r'^yuhaoban_wechat_call_duration_seconds_(sum|count)\{api="/sns/jscode2session",errcode="0"\} ([0-9.e+-]+)$',
    re.M,
)


class Codes:
    """Login codes from the emulator, as wx.login hands them to phones; about half for a
    returning user."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.openids: list[str] = []

    def mint(self, count: int) -> list[str]:
        codes = []
        for n in range(count):
            returning = n % 2 and self.openids
            openid = (
                self.openids[(len(self.openids) * 7919 + n) % len(self.openids)]
                if returning
                else None
            )
            minted = self.emulator.login(openid=openid)
            if not returning:
                self.openids.append(minted["openid"])
            codes.append(minted["code"])
        return codes


class Addresses:
    """A client address per request, as the balancer's X-Forwarded-For names it."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"10.{(self.n >> 16) & 255}.{(self.n >> 8) & 255}.{self.n & 255}"


def refresh_tokens(env: dict[str, str], count: int) -> list[str]:
    """`count` refresh tokens, each the first of a login of its own user; committed."""
    os.environ.update(env)
    from app import create_app
    from app.db import utcnow
    from app.identity.models import User
    from app.identity.principals import principal_for
    from app.identity.sessions import start_session
    from blueprints.authz import token_settings

    app = create_app("development", DATABASE_URL=env["DATABASE_URL"], SEED_DEMO_DATA=False)
    tag = uuid.uuid4().hex[:6]
    with app.test_request_context():
        session = app.extensions["db"].sessionmaker()
        people = [User(openid=f"o_bench_refresh_{tag}_{n}") for n in range(count)]
        session.add_all(people)
        session.flush()
        settings, now = token_settings(), utcnow()
        tokens = [
            start_session(
                session,
                principal_for(session, "user", person.id),
                settings=settings,
                refresh_ttl_seconds=3600,
                now=now,
            ).refresh_token
            for person in people
        ]
        session.commit()
        session.close()
    app.extensions["db"].engine.dispose()
    return tokens


def wechat_seconds(app_url: str) -> tuple[float, float]:
    """(sum, count) of the product's successful jscode2session calls, all workers."""
    text = requests.get(f"{app_url}/metrics", timeout=10).text
    found = dict(_WECHAT_SUM.findall(text))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def main() -> None:
    clean_up_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="per run")
    parser.add_argument("--connections", type=int, default=16, help="phase 2")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2 cores)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    require_wrk()
    database_url, made = bench_database("bench_login")
    log_dir = Path(f"/tmp/login-bench-{uuid.uuid4().hex[:6]}")
    log_dir.mkdir()
    metrics_dir = tempfile.mkdtemp(prefix="login-bench-metrics-")
    emulator = Emulator(apps={APPID: SECRET}, code_ttl=3600)
    emulator_server, emulator_url = serve_in_thread("127.0.0.1", 0, emulator=emulator)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "SEED_DEMO_DATA": "0",
        "LOG_LEVEL": "INFO",
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_LOGIN": "20/minute",
        "REDIS_URL": args.redis_url,
        "PROXY_COUNT": "1",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "JOB_RUNNER": "manual",
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": emulator_url,
        "MINIMAL_LOGIN_DSN": database_url.replace("postgresql+psycopg://", "postgresql://"),
        "MINIMAL_LOGIN_WECHAT": emulator_url,
        "MINIMAL_LOGIN_APP": f"{APPID}:{SECRET}",
        "MINIMAL_LOGIN_POOL": str(THREADS),
    }
    servers = []
    try:
        migrate(env)
        from minimal_login import create_tables

        create_tables(env["MINIMAL_LOGIN_DSN"])
        tokens = refresh_tokens(env, REFRESH_TOKENS_PER_SECOND * args.seconds * (args.rounds + 1))
        subprocess.run(
            ["redis-cli", "-u", args.redis_url, "FLUSHDB"], check=True, stdout=subprocess.DEVNULL
        )
        ports = {"product": free_port(), "minimal": free_port()}
        for name, app in (("product", "wsgi:app"), ("minimal", "bench.minimal_login:app")):
            servers.append(
                start_gunicorn(
                    app,
                    port=ports[name],
                    workers=args.workers,
                    threads=THREADS,
                    env=env,
                    stderr=open(log_dir / f"{name}.log", "w"),  # noqa: SIM115
                )
            )
        for port in ports.values():
            wait_until_up(f"http://127.0.0.1:{port}/healthz")
        measure(args, Codes(emulator), tokens, ports, emulator_url, log_dir)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)
        emulator_server.shutdown()
        drop_database(made)


def measure(
    args: argparse.Namespace,
    codes: Codes,
    tokens: list[str],
    ports: dict[str, int],
    emulator_url: str,
    log_dir: Path,
) -> None:
    product_url = f"http://127.0.0.1:{ports['product']}"
    minimal_url = f"http://127.0.0.1:{ports['minimal']}"
    addresses = Addresses()

    def emulator_alone(connections: int, seconds: float) -> Result:
        requests_ = [
            Request(
                "GET",
                f"/sns/jscode2session?appid={APPID}&secret={SECRET}&js_code={code}"
                "&grant_type=authorization_code",
            )
            for code in codes.mint(EMULATOR_CODES_PER_SECOND * int(seconds))
        ]
        return run_wrk(emulator_url, requests_, connections=connections, seconds=seconds)

    def minimal(connections: int, seconds: float) -> Result:
        requests_ = [
            Request("POST", "/login", body=json.dumps({"code": code}))
            for code in codes.mint(LOGIN_CODES_PER_SECOND * int(seconds))
        ]
        return run_wrk(
            minimal_url, requests_, connections=connections, seconds=seconds, minus="wechat"
        )

    def product(connections: int, seconds: float) -> Result:
        requests_ = [
            Request(
                "POST",
                "/api/v1/auth/wechat/login",
                headers={"X-Forwarded-For": addresses.next()},
                body=json.dumps({"code": code}),
            )
            for code in codes.mint(LOGIN_CODES_PER_SECOND * int(seconds))
        ]
        before = wechat_seconds(product_url)
        result = run_wrk(
            product_url, requests_, connections=connections, seconds=seconds, minus="wechat"
        )
        after = wechat_seconds(product_url)
        calls = after[1] - before[1]
        # wrk stops with a request per connection possibly still in the server: at -c1 that
        # is one call in hundreds.
        result.wechat_mean_ms = (after[0] - before[0]) / calls * 1000 if calls else 0.0  # type: ignore[attr-defined]
        return result

    def refresh(connections: int, seconds: float) -> Result:
        count = REFRESH_TOKENS_PER_SECOND * int(seconds)
        batch, tokens[:count] = tokens[:count], []
        requests_ = [
            Request(
                "POST",
                "/api/v1/auth/refresh",
                headers={"X-Forwarded-For": addresses.next()},
                body=json.dumps({"refresh_token": token}),
            )
            for token in batch
        ]
        return run_wrk(product_url, requests_, connections=connections, seconds=seconds)

    def show(name: str, result: Result) -> None:
        extra = ""
        if result.minus_n:
            extra = f"  beyond wechat p50 {result.minus_p50:5.2f} ms"
        elif getattr(result, "wechat_mean_ms", 0):
            extra = f"  wechat mean {result.wechat_mean_ms:5.2f} ms (/metrics)"  # type: ignore[attr-defined]
        print(f"  {result.line(name)}{extra}", flush=True)
        if result.first_refusal:
            print(f"    first refusal: {result.first_refusal}  statuses {result.statuses}")

    def beyond(result: Result) -> float:
        """Server time of one login beyond its jscode2session round trip (p50, ms)."""
        if result.minus_n:
            return result.minus_p50
        return result.server_p50 - result.wechat_mean_ms  # type: ignore[attr-defined,no-any-return]

    kinds: dict[str, tuple[str, Callable[[int, float], Result]]] = {
        "emulator": ("jscode2session alone (emulator)", emulator_alone),
        "minimal": ("minimal login (floor)", minimal),
        "product": ("product login", product),
    }
    print(
        f"login benchmark: gunicorn {args.workers} workers x {THREADS} threads (gthread) per server,"
        f" wrk -t1, PostgreSQL; production-like: INFO JSON logs ({log_dir}), login limit"
        f" 20/minute per address on Redis ({args.redis_url}), each request from its own address"
        f" and with its own login code (about half of returning users)",
        flush=True,
    )
    for _name, fn in kinds.values():  # warm every worker: connections, imports, caches
        fn(4, 2)
    refresh(4, 1)

    print(f"phase 1: one client (wrk -c1), {args.rounds} rounds x {args.seconds} s, interleaved")
    single: list[dict[str, Result]] = []
    for index in range(args.rounds):
        order = list(kinds)
        if index % 2:
            order.reverse()
        print(f"round {index + 1}/{args.rounds}")
        got = {}
        for name in order:
            label, fn = kinds[name]
            got[name] = fn(1, args.seconds)
            show(label, got[name])
        single.append(got)

    print(
        f"phase 2: {args.connections} connections, {args.rounds} rounds x {args.seconds} s, interleaved"
    )
    loaded: list[dict[str, Result]] = []
    for index in range(args.rounds):
        order = [*kinds, "refresh"]
        if index % 2:
            order.reverse()
        print(f"round {index + 1}/{args.rounds}")
        got = {}
        for name in order:
            label, fn = kinds.get(name, ("product refresh", refresh))
            got[name] = fn(args.connections, args.seconds)
            show(label, got[name])
        loaded.append(got)

    med = statistics.median
    refused = sum(r[name].refused for rows in (single, loaded) for r in rows for name in r)
    product_beyond = med(beyond(r["product"]) for r in single)
    minimal_beyond = med(beyond(r["minimal"]) for r in single)
    print("summary (medians of the rounds):")
    print(
        f"  one client: jscode2session alone client p50 {med(r['emulator'].p50 for r in single):.2f} ms;"
        f" minimal login server p50 {med(r['minimal'].server_p50 for r in single):.2f} ms"
        f" ({minimal_beyond:.2f} beyond its jscode2session);"
        f" product login server p50 {med(r['product'].server_p50 for r in single):.2f} ms"
        f" ({product_beyond:.2f} beyond its jscode2session)"
    )
    ratio = med(r["product"].rate / r["minimal"].rate for r in loaded)
    print(
        f"  {args.connections} connections: jscode2session alone {med(r['emulator'].rate for r in loaded):.0f}/s,"
        f" minimal login {med(r['minimal'].rate for r in loaded):.0f}/s,"
        f" product login {med(r['product'].rate for r in loaded):.0f}/s ({ratio:.2f} of the minimal),"
        f" server p50 {med(r['product'].server_p50 for r in loaded):.2f} ms;"
        f" product refresh {med(r['refresh'].rate for r in loaded):.0f}/s,"
        f" server p50 {med(r['refresh'].server_p50 for r in loaded):.2f} ms"
    )
    met = product_beyond <= TARGET_BEYOND_MS
    per_round = ", ".join(f"{beyond(r['product']):.2f}" for r in single)
    print(
        f"  target login <= {TARGET_BEYOND_MS:.0f} ms of server time beyond jscode2session (one client):"
        f" {'met' if met else 'NOT met'} ({product_beyond:.2f} ms; per round"
        f" {per_round}; the minimal login {minimal_beyond:.2f} ms)"
    )
    print(f"  refusals {refused} (every request should be answered 200)")


if __name__ == "__main__":
    main()

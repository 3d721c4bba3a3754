"""Benchmark: mini-program login and token refresh under gunicorn with concurrent clients.

Starts the WeChat emulator and gunicorn as separate processes (as in production, with the
emulator standing in for api.weixin.qq.com), then measures, in alternating rounds:

- the bare endpoint `/healthz` (same server, same middleware, no work): the baseline;
- `POST /api/v1/auth/wechat/login` (code2Session over HTTP, user upsert, token pair, audit);
- `POST /api/v1/auth/refresh` (rotation with reuse detection, audit).

The server's own time comes from the `Server-Timing` header each response carries, so client
and network noise stay out of the comparison. Targets: login p50 within 3x the bare p50,
refresh p50 within 2x. Database: $DATABASE_URL if set, else a fresh SQLite file.

    .venv/bin/python bench/login.py [--clients 8] [--requests 300] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from servers import BIN, ROOT, free_port, start_gunicorn, wait_until_up

APPID, SECRET = "wx_bench_yuhaoban", "bench-wechat-secret"
TIMING = re.compile(r"app;dur=([0-9.]+)")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


class Run:
    """Timings of one kind of request: server time per request and wall time of the batch."""

    def __init__(self) -> None:
        self.server_ms: list[float] = []
        self.wall_seconds = 0.0
        self.count = 0
        self.errors = 0

    def add(self, response: requests.Response) -> None:
        self.count += 1
        match = TIMING.search(response.headers.get("Server-Timing", ""))
        if response.status_code >= 400 or not match:
            self.errors += 1
            return
        self.server_ms.append(float(match.group(1)))


def run_batch(run: Run, clients: int, jobs: list, work) -> list:  # type: ignore[no-untyped-def]
    sessions = [requests.Session() for _ in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(
            pool.map(lambda pair: work(sessions[pair[0] % clients], pair[1]), enumerate(jobs))
        )
    run.wall_seconds += time.perf_counter() - started
    for response, _ in results:
        run.add(response)
    return [extra for _, extra in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-login-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"
    emulator_port, app_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    app_url = f"http://127.0.0.1:{app_port}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": emulator_url,
        "JOB_RUNNER": "manual",
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    processes = []
    try:
        processes.append(
            subprocess.Popen(
                [
                    str(BIN / "python"),
                    "-m",
                    "wechat.emulator",
                    "--port",
                    str(emulator_port),
                    "--app",
                    f"{APPID}:{SECRET}",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        processes.append(
            start_gunicorn("wsgi:app", port=app_port, workers=args.workers, threads=4, env=env)
        )
        wait_until_up(f"{emulator_url}/_emulator/stats")
        wait_until_up(f"{app_url}/healthz")
        measure(app_url, emulator_url, args, database_url)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)


def measure(app_url: str, emulator_url: str, args: argparse.Namespace, database_url: str) -> None:
    bare, login, refresh = Run(), Run(), Run()
    dev = requests.Session()

    def do_bare(http: requests.Session, _job: object):  # type: ignore[no-untyped-def]
        return http.get(f"{app_url}/healthz", timeout=10), None

    def do_login(http: requests.Session, code: str):  # type: ignore[no-untyped-def]
        response = http.post(f"{app_url}/api/v1/auth/wechat/login", json={"code": code}, timeout=10)
        return response, response.json().get("refresh_token")

    def do_refresh(http: requests.Session, token: str):  # type: ignore[no-untyped-def]
        response = http.post(
            f"{app_url}/api/v1/auth/refresh", json={"refresh_token": token}, timeout=10
        )
        return response, None

    # Warm up every worker's connections and caches before measuring.
    for _ in range(20):
        dev.get(f"{app_url}/healthz")
    for round_number in range(args.rounds):
        codes = [
            dev.post(f"{emulator_url}/_emulator/login", json={}).json()["code"]
            for _ in range(args.requests)
        ]
        run_batch(bare, args.clients, [None] * args.requests, do_bare)
        tokens = run_batch(login, args.clients, codes, do_login)
        run_batch(refresh, args.clients, [t for t in tokens if t], do_refresh)
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    backend = database_url.split(":", 1)[0]
    print(
        f"login benchmark: gunicorn {args.workers} workers x 4 threads, {args.clients} clients, "
        f"{args.rounds} rounds x {args.requests} requests per kind, database {backend}"
    )
    print(
        f"{'endpoint':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x bare p50':>11} "
        f"{'errors':>7}"
    )
    bare_p50 = statistics.median(bare.server_ms)
    for name, run in (("bare", bare), ("login", login), ("refresh", refresh)):
        p50, p99 = statistics.median(run.server_ms), percentile(run.server_ms, 0.99)
        print(
            f"{name:<10} {run.count / run.wall_seconds:8.1f} {p50:8.2f} {p99:8.2f} "
            f"{p50 / bare_p50:11.2f} {run.errors:7d}"
        )
    login_ratio = statistics.median(login.server_ms) / bare_p50
    refresh_ratio = statistics.median(refresh.server_ms) / bare_p50
    print(
        f"target login <= 3x bare p50: {'met' if login_ratio <= 3 else 'NOT met'} "
        f"({login_ratio:.2f}x)"
    )
    print(
        f"target refresh <= 2x bare p50: {'met' if refresh_ratio <= 2 else 'NOT met'} "
        f"({refresh_ratio:.2f}x)"
    )


if __name__ == "__main__":
    main()

"""Starting and waiting for the servers a benchmark drives: one way for every bench."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# gunicorn.conf.py's worker count when WEB_CONCURRENCY does not set one.
PRODUCTION_WORKERS = multiprocessing.cpu_count() * 2 + 1


def clean_up_on_sigterm() -> None:
    """Let SIGTERM (`kill`, a CI step's timeout) end the bench as Ctrl-C does, through its
    `finally`: the servers it started are stopped and its database dropped. Python's default
    SIGTERM ends the process at once and left them running."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start_gunicorn(
    app: str,
    *,
    port: int,
    workers: int,
    threads: int,
    env: Mapping[str, str],
    stderr: IO[Any] | int | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """gunicorn with gthread workers on 127.0.0.1:`port`, as production runs the app.

    With `--reuse-port`: each worker listens on a socket of its own and the kernel spreads new
    connections over them evenly. wrk opens its connections once and keeps them for the run;
    on one shared socket whichever worker woke first accepted them, and a run could give one
    worker three quarters of them (measured: one worker at 0.85 of a core, the other at 0.25,
    a take ratio of 0.27 beside 0.44 the round before). In production HAProxy opens a
    connection per request (`deploy/haproxy.cfg.template`), which the workers share as they
    come free; the bench's kept-alive connections meet that best when they are spread evenly.
    """
    return subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            *extra,
            "--reuse-port",  # see the docstring
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--no-control-socket",  # gunicorn 27's default socket is one per machine
            app,
        ],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def start_emulator(appid: str, secret: str) -> tuple[subprocess.Popen[bytes], str]:
    """The WeChat emulator in a process of its own (as development runs it), for one app;
    returns the process and its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wechat.emulator",
            "--port",
            str(port),
            "--app",
            f"{appid}:{secret}",
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base_url}/_emulator/stats")
    return process, base_url


LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def bench_database(prefix: str) -> tuple[str, str]:
    """$DATABASE_URL when it names PostgreSQL, else a fresh database on the local server:
    (its SQLAlchemy URL, the name made, or "" when none was); `drop_database` removes it."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgresql"):
        return url, ""
    made = f"{prefix}_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {made}"],
        check=True,
    )
    return f"{LOCAL_POSTGRES}/{made}", made


def drop_database(made: str) -> None:
    if made:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE {made}"],
            check=False,
        )


def migrate(env: Mapping[str, str]) -> None:
    """`flask db upgrade` on the database `env` names (DATABASE_URL), as a deployment runs it."""
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"flask db upgrade failed:\n{done.stderr}")


def create_fresh_database(admin_url: str, name: str) -> str:
    """A new database on the server `admin_url` reaches; returns its libpq URL. For a bench
    whose COPY'd rows take fixed ids, so it cannot share a database (`drop_fresh_database`)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_fresh_database(admin_url: str, name: str) -> None:
    """Drop what `create_fresh_database` made, whoever is still connected to it."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

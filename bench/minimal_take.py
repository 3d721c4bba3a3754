"""The floor for take-ticket: a minimal hand-written take, outside the product.

Flask and a psycopg connection pool, no auth, no ORM, no schema library: `POST /take` with
`{"hall_id", "category_id", "user_id"}` draws the next number of the (hall, category, day)
counter with an atomic upsert (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`) and inserts the
ticket, in one transaction, and answers 201 with the ticket. Its tables (`minimal_take_*`) are its
own, in the bench's database; `create_tables` makes them. `bench/queue_load.py` serves it with
the same gunicorn settings as the product (`bench.minimal_take:app`) and compares the two.

It adds `Server-Timing: app;dur=<ms>` as the product does, so the bench reads the server's time
for both the same way. The pool is psycopg_pool's when it is installed (`pip install
psycopg-pool`); otherwise a queue of connections of the same size (what psycopg_pool does on
this path: hand out an idle connection, take it back).

    MINIMAL_TAKE_DSN=postgresql://postgres@127.0.0.1:5432/yhb_take \
        gunicorn -k gthread --threads 8 bench.minimal_take:app
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from flask import Flask, request

LOCAL = ZoneInfo("Asia/Shanghai")
POOL_SIZE = int(os.environ.get("MINIMAL_TAKE_POOL", "8"))  # one per gunicorn thread

SCHEMA = """
CREATE TABLE IF NOT EXISTS minimal_take_counters (
    hall_id bigint NOT NULL,
    category_id bigint NOT NULL,
    service_day date NOT NULL,
    last_number integer NOT NULL,
    PRIMARY KEY (hall_id, category_id, service_day)
);
CREATE TABLE IF NOT EXISTS minimal_take_tickets (
    id bigserial PRIMARY KEY,
    hall_id bigint NOT NULL,
    category_id bigint NOT NULL,
    service_day date NOT NULL,
    number integer NOT NULL,
    display varchar(16) NOT NULL,
    user_id bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (hall_id, category_id, service_day, number)
);
"""

DRAW = (
    "INSERT INTO minimal_take_counters (hall_id, category_id, service_day, last_number)"
    " VALUES (%s, %s, %s, 1) ON CONFLICT (hall_id, category_id, service_day)"
    " DO UPDATE SET last_number = minimal_take_counters.last_number + 1 RETURNING last_number"
)
INSERT = (
    "INSERT INTO minimal_take_tickets (hall_id, category_id, service_day, number, display,"
    " user_id) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, taken_at"
)


def dsn() -> str:
    """A libpq URL from MINIMAL_TAKE_DSN, else from the product's DATABASE_URL."""
    url = os.environ.get("MINIMAL_TAKE_DSN") or os.environ.get("DATABASE_URL", "")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_tables(url: str) -> None:
    """Make the minimal take's tables (and empty them: each bench run starts from none)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("TRUNCATE minimal_take_tickets, minimal_take_counters")


class _QueuePool:
    """psycopg_pool's ConnectionPool.connection() on this path, when it is not installed."""

    def __init__(self, url: str, size: int) -> None:
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(psycopg.connect(url))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._idle.get()
        try:
            with conn.transaction():
                yield conn
        finally:
            self._idle.put(conn)


def _pool(url: str) -> Any:
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        return _QueuePool(url, POOL_SIZE)
    return ConnectionPool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, open=True)


app = Flask(__name__)
# gunicorn imports this module in each worker (no --preload): one pool per process.
pool = _pool(dsn()) if dsn() else None


@app.post("/take")
def take() -> tuple[dict[str, Any], int]:
    body = request.get_json()
    hall_id, category_id, user_id = (int(body[k]) for k in ("hall_id", "category_id", "user_id"))
    day = dt.datetime.now(LOCAL).date()
    with pool.connection() as conn:  # commits when the block ends, rolls back on an error
        [number] = conn.execute(DRAW, (hall_id, category_id, day)).fetchone()
        display = f"A{number:03d}"
        ticket_id, taken_at = conn.execute(
            INSERT, (hall_id, category_id, day, number, display, user_id)
        ).fetchone()
    return {
        "id": ticket_id,
        "display": display,
        "number": number,
        "service_day": day.isoformat(),
        "taken_at": taken_at.isoformat(),
    }, 201


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


class _ServerTiming:
    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()

        def timed(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            headers.append(
                ("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.3f}")
            )
            return start_response(status, headers, *args)

        return self.wsgi_app(environ, timed)


app.wsgi_app = _ServerTiming(app.wsgi_app)  # type: ignore[method-assign]

"""The floor for take-ticket: a minimal hand-written take, outside the product.

Flask and a psycopg connection pool, no auth, no ORM, no schema library: `POST /take` with
`{"hall_id", "category_id", "user_id"}` draws the next number of the (hall, category, day)
counter with an atomic upsert (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`) and inserts the
ticket, in one transaction, and answers 201 with the ticket. Its tables (`minimal_take_*`) are its
own, in the bench's database; `create_tables` makes them. `bench/queue_load.py` serves it with
the same gunicorn settings as the product (`bench.minimal_take:app`) and compares the two.

It adds `Server-Timing: app;dur=<ms>` as the product does, so the bench reads the server's time
for both the same way (`bench/floors.py`). The pool is psycopg_pool's (requirements-dev).

    MINIMAL_TAKE_DSN=postgresql://postgres@127.0.0.1:5432/yhb_take \
        gunicorn -k gthread --threads 8 bench.minimal_take:app
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, request
from psycopg_pool import ConnectionPool

# gunicorn imports this file as `bench.<name>`, its bench script as a top-level module: either
# way its sibling modules are found beside it, as every bench script finds them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from floors import ServerTiming, libpq_url, make_tables

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


def create_tables(url: str) -> None:
    make_tables(url, SCHEMA, "minimal_take_tickets, minimal_take_counters")


app = Flask(__name__)
# gunicorn imports this module in each worker (no --preload): one pool per process.
DSN = libpq_url("MINIMAL_TAKE_DSN")
pool = ConnectionPool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, open=True) if DSN else None


@app.post("/take")
def take() -> tuple[dict[str, Any], int]:
    body = request.get_json()
    hall_id, category_id, user_id = (int(body[k]) for k in ("hall_id", "category_id", "user_id"))
    day = dt.datetime.now(LOCAL).date()
    assert pool is not None, "MINIMAL_TAKE_DSN is not set"
    with pool.connection() as conn:  # commits when the block ends, rolls back on an error
        drawn = conn.execute(DRAW, (hall_id, category_id, day)).fetchone()
        assert drawn is not None  # an upsert with RETURNING always returns its row
        [number] = drawn
        display = f"A{number:03d}"
        inserted = conn.execute(
            INSERT, (hall_id, category_id, day, number, display, user_id)
        ).fetchone()
        assert inserted is not None
        ticket_id, taken_at = inserted
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


app.wsgi_app = ServerTiming(app.wsgi_app)  # type: ignore[method-assign]

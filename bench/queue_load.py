# ruff: noqa: E501  (printed tables read better unwrapped)
"""Benchmark: the product's take-ticket against a minimal hand-written take, wrk, PostgreSQL.

Two gunicorn servers with the same settings (`bench/servers.py`: gthread, production's worker
count, CPUs x 2 + 1 as `gunicorn.conf.py`, x 8 threads) on the same database:

- the product (`wsgi:app`), `POST /api/v1/queue/tickets`: hall-code token and location check,
  hall hours, daily cap, one active ticket per citizen, green channel, Idempotency-Key, the
  per-citizen rate limit (Redis), the counter upsert, ticket and transition, position and wait
  estimate in the answer; every request from a different signed-in citizen (as many citizens
  as a run can send requests; between runs their tickets are marked done, so the one-active
  rule and the 30/minute per-citizen limit never refuse);
- the floor, `bench/minimal_take.py`: Flask and a psycopg pool, one transaction (counter upsert
  `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, ticket insert), no auth, its own tables.

Load comes from wrk (`bench/loadgen.py`, one thread, 32 connections, Lua), which costs the
server's two cores next to nothing. Each round runs the two A B B A (minimal, product, product,
minimal; the next round product first), and its ratio is that of the two servers' mean rates in
the round, so a steady drift of the machine's speed weighs on both alike; then a paced phase
offers the product's take half the minimal take's median saturation rate (wrk's connections
sharing one schedule of send times, `loadgen.run_wrk`'s `rate`), for its latency: in a closed
loop of 32 connections latency is 32 / throughput whatever a take costs. Client latency is
printed beside the server's own time (`Server-Timing: app;dur=`). After every run SQL checks
each (hall, category, day): no number twice, none missing (the counter's last number is the
count of distinct numbers).

Production-like: INFO logs as JSON lines (to /tmp, as a log shipper would read them), the rate
limiter counting in Redis (`--redis-url`, DB 11 by default), PostgreSQL, whose tables each run
wrote are vacuumed after it (autovacuum's work in production; it is off on this machine).

Targets: product >= 0.5 of the minimal take's throughput (median of the rounds' ratios); p99 <
100 ms at half the minimal take's saturation rate; zero duplicate and zero missing numbers.

    .venv/bin/python bench/queue_load.py [--rounds 3] [--seconds 8] [--paced-seconds 12]

DATABASE_URL (PostgreSQL) names the database; without it a fresh one is made and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Request, Result, require_wrk, run_wrk
from servers import (
    PRODUCTION_WORKERS,
    bench_database,
    clean_up_on_sigterm,
    drop_database,
    free_port,
    migrate,
    start_gunicorn,
    wait_until_up,
)

CONNECTIONS = 32
PACED_SHARE = 0.5
RATIO_TARGET = 0.5
P99_TARGET_MS = 100.0
# Citizens one run may need at most: the fastest take measured here is ~600/s, and the list is
# sent round-robin, so a run longer than this many requests would reuse a citizen (a 409).
CITIZENS_PER_SECOND = 700


def setup(env: dict[str, str], citizens: int) -> dict[str, Any]:
    """Hall (open all day, 32 staffed windows), printed code, signed-in citizens; committed."""
    os.environ.update(env)
    from app import create_app
    from app.db import utcnow
    from app.identity.demo import new_citizens
    from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant
    from app.organisation.models import Hall, HallKind
    from app.queueing import codes
    from app.queueing.demo import HALL_LAT, HALL_LNG, setup_queue_hall
    from app.queueing.settings import from_config
    from blueprints.authz import token_settings

    app = create_app("development", DATABASE_URL=env["DATABASE_URL"], SEED_DEMO_DATA=False)
    tag = uuid.uuid4().hex[:6]
    with app.test_request_context():
        session = app.extensions["db"].sessionmaker()
        hall = Hall(code=f"BENCH{tag}", name=f"压测大厅{tag}", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        clerk = StaffAccount(username=f"bench.{tag}", display_name="压测", password_hash="x")
        clerk.grants = [StaffRoleGrant(role=StaffRole.WINDOW_CLERK, hall_id=hall.id)]
        session.add(clerk)
        session.flush()
        # Windows staffed as in a working hall, so every take computes its wait estimate.
        qh = setup_queue_hall(
            session,
            hall,
            categories=[("综合业务", "A")],
            windows=[(n, "A") for n in range(1, CONNECTIONS + 1)],
            daily_cap=1_000_000,
            clerk_id=clerk.id,
        )
        settings = from_config(app.config)
        code = codes.create_printed_code(session, settings, hall.id, label=None, staff_id=None)
        _, tokens = new_citizens(
            session, f"o_bench_{tag}", citizens, settings=token_settings(), now=utcnow()
        )
        data = {
            "hall": hall.id,
            "category": qh.categories["A"].id,
            "code": codes.printed_token(settings, code),
            "here": {"latitude": HALL_LAT, "longitude": HALL_LNG},
            "tokens": tokens,
        }
        session.commit()
        session.close()
    app.extensions["db"].engine.dispose()
    return data


class Checks:
    """SQL after every run: numbers per (hall, category, day) without duplicates or gaps."""

    # What each run writes (the product's done-marking too): vacuumed after it.
    PRODUCT_TABLES = ("tickets", "ticket_transitions", "ticket_counters", "queue_counts")
    MINIMAL_TABLES = ("minimal_take_tickets", "minimal_take_counters")
    PRODUCT = (
        "SELECT t.hall_id, t.issued_category_id, t.service_day, count(*), count(DISTINCT t.number),"
        " max(c.last_number) FROM tickets t JOIN ticket_counters c"
        " ON c.category_id = t.issued_category_id AND c.service_day = t.service_day"
        " GROUP BY 1, 2, 3"
    )
    MINIMAL = (
        "SELECT t.hall_id, t.category_id, t.service_day, count(*), count(DISTINCT t.number),"
        " max(c.last_number) FROM minimal_take_tickets t JOIN minimal_take_counters c"
        " USING (hall_id, category_id, service_day) GROUP BY 1, 2, 3"
    )

    def __init__(self, url: str, category_id: int) -> None:
        import psycopg

        self.conn = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )
        self.category_id = category_id
        self.duplicates = self.missing = 0

    def run(self, query: str) -> str:
        duplicates = missing = 0
        for *_, count, distinct, last in self.conn.execute(query).fetchall():
            duplicates += count - distinct
            missing += last - distinct
        self.duplicates += duplicates
        self.missing += missing
        return f"duplicates {duplicates} missing {missing}"

    def done(self) -> None:
        """Mark the product's waiting tickets done, so the same citizens may take again.

        wrk stops with up to a request per connection still in the server: they commit within
        the second, and are marked too."""
        time.sleep(1)
        self.conn.execute(
            "UPDATE tickets SET status = 'done' WHERE category_id = %s AND status = 'waiting'",
            (self.category_id,),
        )
        self.vacuum(self.PRODUCT_TABLES)

    def vacuum(self, tables: tuple[str, ...]) -> None:
        """Clear the dead rows a run left, as autovacuum does in production. This machine's
        PostgreSQL runs with autovacuum off (its configuration file): without this, dead
        versions of the counter rows and dead index entries piled up run after run, and each
        take's share of the database's work grew with them (1.5 to 4 ms over eight runs)."""
        self.conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


def main() -> None:
    clean_up_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8, help="per run")
    parser.add_argument("--paced-seconds", type=int, default=12)
    parser.add_argument(
        "--workers", type=int, default=PRODUCTION_WORKERS, help="gunicorn workers (production's)"
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    require_wrk()
    database_url, made = bench_database("bench_queue")
    log_dir = Path(f"/tmp/queue-bench-{uuid.uuid4().hex[:6]}")
    log_dir.mkdir()
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "SEED_DEMO_DATA": "0",
        "LOG_LEVEL": "INFO",
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_TAKE_TICKET": "30/minute",
        "REDIS_URL": args.redis_url,
        "JOB_RUNNER": "manual",  # a take enqueues no job
        "WECHAT_API_BASE": "http://127.0.0.1:9",  # never called here
        "MINIMAL_TAKE_DSN": database_url.replace("postgresql+psycopg://", "postgresql://"),
    }
    servers = []
    try:
        migrate(env)
        from minimal_take import create_tables

        create_tables(env["MINIMAL_TAKE_DSN"])
        citizens = CITIZENS_PER_SECOND * max(args.seconds, args.paced_seconds)
        data = setup(env, citizens)
        subprocess.run(
            ["redis-cli", "-u", args.redis_url, "FLUSHDB"], check=True, stdout=subprocess.DEVNULL
        )
        ports = {"product": free_port(), "minimal": free_port()}
        for name, app in (("product", "wsgi:app"), ("minimal", "bench.minimal_take:app")):
            servers.append(
                start_gunicorn(
                    app,
                    port=ports[name],
                    workers=args.workers,
                    threads=args.threads,
                    env=env,
                    stderr=open(log_dir / f"{name}.log", "w"),  # noqa: SIM115
                )
            )
        for port in ports.values():
            wait_until_up(f"http://127.0.0.1:{port}/healthz")
        measure(args, data, ports, Checks(database_url, data["category"]), log_dir)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)
        drop_database(made)


def measure(
    args: argparse.Namespace,
    data: dict[str, Any],
    ports: dict[str, int],
    checks: Checks,
    log_dir: Path,
) -> None:
    body = json.dumps({"code": data["code"], "category_id": data["category"], **data["here"]})
    runs = 0

    def product(seconds: float, rate: float | None = None) -> Result:
        nonlocal runs
        runs += 1
        requests = [
            Request(
                "POST",
                "/api/v1/queue/tickets",
                headers={"Authorization": f"Bearer {token}"},
                body=body,
                key=f"r{runs}c{index}",
            )
            for index, token in enumerate(data["tokens"])
        ]
        result = run_wrk(
            f"http://127.0.0.1:{ports['product']}",
            requests,
            connections=CONNECTIONS,
            seconds=seconds,
            rate=rate,
        )
        result.check = checks.run(Checks.PRODUCT)  # type: ignore[attr-defined]
        checks.done()
        return result

    minimal_requests = [
        Request(
            "POST",
            "/take",
            body=json.dumps(
                {"hall_id": data["hall"], "category_id": data["category"], "user_id": n}
            ),
        )
        for n in range(1, 1001)
    ]

    def minimal(seconds: float) -> Result:
        result = run_wrk(
            f"http://127.0.0.1:{ports['minimal']}",
            minimal_requests,
            connections=CONNECTIONS,
            seconds=seconds,
        )
        result.check = checks.run(Checks.MINIMAL)  # type: ignore[attr-defined]
        checks.vacuum(Checks.MINIMAL_TABLES)
        return result

    def show(name: str, result: Result) -> None:
        print(f"  {result.line(name)}  {result.check}", flush=True)  # type: ignore[attr-defined]
        if result.first_refusal:
            print(f"    first refusal: {result.first_refusal}  statuses {result.statuses}")

    print(
        f"queue benchmark: gunicorn {args.workers} workers x {args.threads} threads (gthread) per server,"
        f" wrk -t1 -c{CONNECTIONS}, PostgreSQL; production-like: INFO JSON logs ({log_dir}),"
        f" rate limiter on Redis ({args.redis_url}, 30 takes/minute per citizen),"
        f" {len(data['tokens'])} signed-in citizens, each request a different one",
        flush=True,
    )
    product(3), minimal(3)  # warm both: every thread's connection, prepared statements
    rows: list[dict[str, list[Result]]] = []
    for index in range(args.rounds):
        pair: tuple[tuple[str, Callable[[float], Result]], ...] = (
            ("minimal", minimal),
            ("product", product),
        )
        if index % 2:
            pair = pair[::-1]
        print(f"round {index + 1}/{args.rounds}")
        got: dict[str, list[Result]] = {"minimal": [], "product": []}
        # A B B A: the machine's speed drifts (by half within minutes here); a steady drift
        # then weighs on both servers' means alike, where A B gave the later one its share.
        for name, fn in (*pair, *pair[::-1]):
            got[name].append(fn(args.seconds))
            show(
                "minimal take (floor)" if name == "minimal" else "product take-ticket",
                got[name][-1],
            )
        rows.append(got)
    med = statistics.median

    def rate(row: dict[str, list[Result]], name: str) -> float:
        return statistics.fmean(result.rate for result in row[name])

    def server_p50(name: str) -> float:
        return med(result.server_p50 for row in rows for result in row[name])

    ratios = [rate(row, "product") / rate(row, "minimal") for row in rows]
    floor = med(rate(row, "minimal") for row in rows)
    take = med(rate(row, "product") for row in rows)
    paced_rate = floor * PACED_SHARE
    print(
        f"paced: product take-ticket at {paced_rate:.0f}/s offered ({PACED_SHARE:.0%} of the minimal take's {floor:.0f}/s)"
    )
    paced = product(args.paced_seconds, rate=paced_rate)
    show("product take-ticket (paced)", paced)
    refused = sum(result.refused for row in rows for runs in row.values() for result in runs)
    refused += paced.refused
    ratio = med(ratios)
    print("summary (medians of the rounds):")
    print(
        f"  minimal take {floor:.1f}/s, server p50 {server_p50('minimal'):.2f} ms;"
        f" product take {take:.1f}/s, server p50 {server_p50('product'):.2f} ms"
    )
    print(
        f"  target product >= {RATIO_TARGET:.0%} of the minimal take's throughput: {'met' if ratio >= RATIO_TARGET else 'NOT met'}"
        f" ({ratio:.2f}; per round {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    print(
        f"  target p99 < {P99_TARGET_MS:.0f} ms at half the floor's saturation: {'met' if paced.p99 < P99_TARGET_MS else 'NOT met'}"
        f" (client p99 {paced.p99:.1f} ms, server p99 {paced.server_p99:.1f} ms, {paced.rate:.0f}/s achieved)"
    )
    ok = checks.duplicates == 0 and checks.missing == 0
    print(
        f"  target zero duplicate and missing numbers: {'met' if ok else 'NOT met'}"
        f" (duplicates {checks.duplicates}, missing {checks.missing}); refusals {refused}"
    )


if __name__ == "__main__":
    main()

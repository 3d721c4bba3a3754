"""Benchmark: take-ticket and call-next under gunicorn on PostgreSQL with 32 concurrent clients.

Starts gunicorn on the benchmark's own app (bench/take_baseline.py: the product plus a
hand-written baseline route the product never mounts) on
$DATABASE_URL, sets up a hall with one printed code, 32 open windows and fresh citizens, then
measures in alternating rounds:

- `POST /api/v1/queue/tickets`: the real take (hall-code check with location, hall open, cap,
  one-active rule, green channel, counter upsert, ticket, transition, position and estimate in
  the response, rate limiter);
- `POST /api/v1/queue/_bench/take-baseline`: the same transaction written by hand in SQL
  (hall-code row, one-active check, counter upsert, ticket, transition), same server, same
  authorisation; the baseline;
- `POST /api/v1/terminal/windows/<id>/call-next` from 32 clerks at 32 windows (each then
  serves and finishes the ticket so the window may call again; only call-next is timed).
  Refusals are counted by code: a QUEUE_EMPTY near the end of a round is a window finding
  the last waiting tickets already being claimed by others (SKIP LOCKED), as designed.

Then, at a fixed offered load below saturation (`--paced-rate` requests/s spread over the 32
clients, each request sent at its scheduled time), the latency of baseline and take-ticket,
measured from the scheduled send time so a client that fell behind counts its wait.

Targets: take-ticket throughput >= 70 % of the baseline's, take-ticket p99 < 100 ms. With 32
clients in a closed loop every request waits for the 31 others ahead of it, so the p99 there is
about 32 / throughput whatever the code does (the baseline's included): the paced phase is where
a latency figure says something about the take itself.

    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/queue_load.py \
        [--clients 32] [--requests 640] [--rounds 3] [--workers 2] [--paced-rate 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from servers import BIN, ROOT, free_port, start_gunicorn, wait_until_up

sys.path.insert(0, str(ROOT))


WARMUP = 128  # untimed requests of each kind before the first round


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Run:
    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.wall_seconds = 0.0
        self.errors: dict[str, int] = {}  # "409 QUEUE_EMPTY" -> count

    @property
    def count(self) -> int:
        return len(self.latency_ms)

    def line(self, name: str) -> str:
        p50, p99 = statistics.median(self.latency_ms), percentile(self.latency_ms, 0.99)
        errors = sum(self.errors.values())
        return f"{name:<16} {self.count / self.wall_seconds:8.1f} {p50:8.2f} {p99:8.2f} {errors:7d}"


def outcome(response: requests.Response) -> int | str:
    """The status, with the error's code for a refusal ("409 QUEUE_EMPTY")."""
    if response.status_code < 400:
        return response.status_code
    try:
        return f"{response.status_code} {response.json().get('code', '')}".strip()
    except ValueError:
        return str(response.status_code)


def run_paced(run: Run, clients: int, jobs: list, work, rate: float) -> None:  # type: ignore[no-untyped-def]
    """Send `jobs` at `rate` per second in all, client i taking every clients-th slot.

    Latency runs from the scheduled send time (no coordinated omission): a client still busy
    with its previous request when its next slot comes counts that wait too.
    """
    sessions = [requests.Session() for _ in range(clients)]
    interval = 1.0 / rate
    start = time.perf_counter() + 0.2

    def client(index: int) -> list[tuple[int, float]]:
        results = []
        for slot in range(index, len(jobs), clients):
            scheduled = start + slot * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                status, _ = work(sessions[index], jobs[slot], index)
            except requests.RequestException:
                status = 599
            results.append((status, (time.perf_counter() - scheduled) * 1000))
        return results

    with ThreadPoolExecutor(clients) as pool:
        outcomes = [pair for part in pool.map(client, range(clients)) for pair in part]
    run.wall_seconds += len(jobs) * interval
    for status, ms in outcomes:
        if isinstance(status, str) or status >= 400:
            run.errors[str(status)] = run.errors.get(str(status), 0) + 1
        else:
            run.latency_ms.append(ms)


def run_batch(run: Run, clients: int, jobs: list, work) -> None:  # type: ignore[no-untyped-def]
    sessions = [requests.Session() for _ in range(clients)]
    slots: dict[int, int] = {}
    lock = threading.Lock()

    def timed(pair):  # type: ignore[no-untyped-def]
        _index, job = pair
        # One client (session, window) per thread: two threads never share a window.
        with lock:
            slot = slots.setdefault(threading.get_ident(), len(slots))
        try:
            return work(sessions[slot], job, slot)
        except requests.RequestException:
            return 599, 0.0  # counted as an error (connection reset or timeout)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(timed, enumerate(jobs)))
    run.wall_seconds += time.perf_counter() - started
    for status, ms in results:
        if isinstance(status, str) or status >= 400:
            run.errors[str(status)] = run.errors.get(str(status), 0) + 1
        else:
            run.latency_ms.append(ms)


def setup(database_url: str, users: int, windows: int):  # type: ignore[no-untyped-def]
    """Hall, code, windows, citizens and a clerk, committed; their ids and tokens."""
    os.environ["DATABASE_URL"] = database_url
    from app import create_app
    from app.db import utcnow
    from app.identity.demo import new_citizens, signed_in
    from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant
    from app.organisation.models import Hall, HallKind
    from app.queueing import codes
    from app.queueing.demo import setup_queue_hall
    from app.queueing.settings import from_config
    from blueprints.authz import token_settings

    app = create_app("development", DATABASE_URL=database_url, SEED_DEMO_DATA=False)
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
            categories=[("综合业务", "A"), ("基线", "B")],
            windows=[(n, "A") for n in range(1, windows + 1)],
            daily_cap=9999,
            clerk_id=clerk.id,
        )
        settings = from_config(app.config)
        code = codes.create_printed_code(session, settings, hall.id, label=None, staff_id=None)
        now, ts = utcnow(), token_settings()
        _, tokens = new_citizens(session, f"o_bench_{tag}", users, settings=ts, now=now)
        [clerk_token] = signed_in(session, "staff", [clerk.id], settings=ts, now=now)
        result = {
            "token": codes.printed_token(settings, code),
            "code_id": code.id,
            "a": qh.categories["A"].id,
            "b": qh.categories["B"].id,
            "windows": [w.id for w in qh.windows.values()],
            "users": tokens,
            "clerk": clerk_token,
        }
        session.commit()
        session.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=640, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2 cores)")
    parser.add_argument(
        "--paced-rate", type=float, default=100.0, help="offered load of the paced phase, req/s"
    )
    parser.add_argument("--paced-seconds", type=float, default=8.0)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgresql"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database (the target is PostgreSQL)")
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "JOB_RUNNER": "manual",
        "LOG_LEVEL": "WARNING",
        # The limiter stays on (its cost is part of a real take), far above this load.
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_TAKE_TICKET": "1000000/minute",
        "WECHAT_API_BASE": "http://127.0.0.1:9",  # never called here
    }
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    paced_users = int(args.paced_rate * args.paced_seconds) + args.clients
    data = setup(
        database_url, WARMUP * 2 + args.requests * args.rounds + 2 * paced_users, args.clients
    )
    server = start_gunicorn(
        "bench.take_baseline:app",
        port=port,
        workers=args.workers,
        threads=8,
        env=env,
        stderr=open("/tmp/queue_bench_gunicorn.log", "w"),  # noqa: SIM115
        extra=("--keep-alive", "75"),
    )
    try:
        wait_until_up(f"{app_url}/healthz")
        measure(app_url, data, args)
    finally:
        server.terminate()
        server.wait(timeout=10)


def measure(app_url: str, data: dict, args: argparse.Namespace) -> None:  # type: ignore[type-arg]
    take, baseline, call = Run(), Run(), Run()
    here = {"latitude": 22.9373, "longitude": 113.3842}

    def do_take(http: requests.Session, token: str, _client: int):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        r = http.post(
            f"{app_url}/api/v1/queue/tickets",
            timeout=10,
            json={"code": data["token"], "category_id": data["a"], **here},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        return outcome(r), (time.perf_counter() - started) * 1000

    def do_baseline(http: requests.Session, token: str, _client: int):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        r = http.post(
            f"{app_url}/api/v1/queue/_bench/take-baseline",
            timeout=10,
            json={"code_id": data["code_id"], "category_id": data["b"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        return outcome(r), (time.perf_counter() - started) * 1000

    clerk = {"Authorization": f"Bearer {data['clerk']}"}

    def do_call(http: requests.Session, _job: object, client: int):  # type: ignore[no-untyped-def]
        window = data["windows"][client % len(data["windows"])]
        base = f"{app_url}/api/v1/terminal/windows/{window}"
        started = time.perf_counter()
        r = http.post(f"{base}/call-next", headers=clerk, timeout=10)
        elapsed = (time.perf_counter() - started) * 1000
        if r.status_code == 200:
            ticket = r.json()["id"]
            http.post(f"{base}/tickets/{ticket}/serve", headers=clerk, json={}, timeout=10)
            http.post(f"{base}/tickets/{ticket}/finish", headers=clerk, json={}, timeout=10)
        return outcome(r), elapsed

    # Both endpoints warm (every worker thread's connection, prepared statements, the
    # forecast) before anything is timed: the first round would otherwise favour the second.
    warm, users = Run(), data["users"]
    run_batch(warm, args.clients, users[:WARMUP], do_baseline)
    run_batch(warm, args.clients, users[WARMUP : 2 * WARMUP], do_take)
    users = users[2 * WARMUP :]
    for round_number in range(args.rounds):
        batch = users[round_number * args.requests : (round_number + 1) * args.requests]
        run_batch(baseline, args.clients, batch, do_baseline)
        run_batch(take, args.clients, batch, do_take)
        run_batch(call, args.clients, [None] * args.requests, do_call)
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    paced_baseline, paced_take = Run(), Run()
    rest = users[args.rounds * args.requests :]
    count = int(args.paced_rate * args.paced_seconds)
    run_paced(paced_baseline, args.clients, rest[:count], do_baseline, args.paced_rate)
    run_paced(paced_take, args.clients, rest[count : 2 * count], do_take, args.paced_rate)

    print(
        f"queue benchmark: gunicorn {args.workers} workers x 8 threads (gthread), {args.clients} "
        f"clients, {args.rounds} rounds x {args.requests} requests per kind, PostgreSQL; "
        "client-side latency"
    )
    print(f"{'endpoint':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(baseline.line("baseline (SQL)"))
    print(take.line("take-ticket"))
    print(call.line("call-next"))
    print(
        f"paced at {args.paced_rate:.0f} req/s offered ({args.clients} clients, latency from the "
        "scheduled send time):"
    )
    print(paced_baseline.line("baseline (SQL)"))
    print(paced_take.line("take-ticket"))
    for name, run in (
        ("baseline", baseline),
        ("take", take),
        ("call", call),
        ("paced baseline", paced_baseline),
        ("paced take", paced_take),
    ):
        if run.errors:
            print(f"  {name} errors by status: {run.errors}")
    ratio = (take.count / take.wall_seconds) / (baseline.count / baseline.wall_seconds)
    p99 = percentile(take.latency_ms, 0.99)
    paced_p99 = percentile(paced_take.latency_ms, 0.99)
    print(
        f"target take-ticket throughput >= 70% of baseline: {'met' if ratio >= 0.7 else 'NOT met'} "
        f"({ratio:.0%})"
    )
    print(
        f"target take-ticket p99 < 100 ms: closed loop {'met' if p99 < 100 else 'NOT met'} "
        f"({p99:.1f} ms; baseline {percentile(baseline.latency_ms, 0.99):.1f} ms); "
        f"paced {'met' if paced_p99 < 100 else 'NOT met'} ({paced_p99:.1f} ms)"
    )


if __name__ == "__main__":
    main()

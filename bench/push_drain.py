# ruff: noqa: E501 (SQL statements and the printed table read better on one line)
"""Benchmark: the policy push drain beside the WeChat emulator's raw send rate, on PostgreSQL.

In a database of its own (created, then dropped unless --keep), with a small set-up: one
department, `--pushes` users with openids logged in and subscribed at the WeChat emulator (a
separate process, as in development), and per round a new policy with `--pushes` waiting
pushes to as many new enterprises (COPY; each user is the legal representative of one
enterprise per round, so no frequency cap holds a push back). Then, interleaved in rounds:

(a) raw: about the same number of messages (wrk runs for as long as they took in the round
    before) sent straight to the emulator's subscribeMessage
    endpoint by wrk (a Lua script through `bench/loadgen.py`, which costs the machine next to
    nothing), with as many connections as the drain sends concurrently: the same body the app
    sends, to openids with grants, so the emulator does the same work per message;
(b) drain: the production path. A Dramatiq worker (`dramatiq app.jobs.worker --processes 1
    --threads 4`, as `make worker` and prod-like start it) runs the `drain_policy_pushes`
    actor, sent as a publish sends it (`app.policies.jobs.kick`); timed from the kick until
    every push of the round is settled.

Production-like and says so: PostgreSQL, Redis for Dramatiq and the shared send-rate limiter
(the limit set far above the rate, so it is taken but never waited for), INFO JSON logs of the
worker to a file, the access token in the Redis cache, the worker at the niceness the
production-like topology gives its workers (`scripts/prod_like.py`, 10: background work yields
to the foreground; `--worker-niceness 0` for the same priority). Quiet hours are switched off
(the bench may run at night). The drain is watched over one open connection. After every
drain: SQL checks each push sent once (one SENT notification row per push, none left in flight
or doubt) and the emulator's own count of messages per user.

Targets: drain >= 85 % of the raw rate measured in the same round (median over rounds), and
>= 500 pushes/s.

Where the CPU goes, per message drained: the emulator, the worker (with its batch sender), this machine's PostgreSQL
processes, and the whole machine (/proc/stat; the rest is the kernel's share of the two TCP
ends, Redis and anything else running), with the share of the cores busy. Raw is the emulator
alone, on about one core (its GIL); the drain shares every core among all of them, so the summary
adds the ratio's budget: the machine's CPU per message that 85 % of the raw rate allows.

`--emulator-cpu N` pins the emulator to CPU N and the worker to the other CPUs, in both phases:
WeChat on hardware of its own, as in production, where the drain's CPU never slows WeChat. An
analysis, not the target's measurement (which is unpinned): it tells how much of the ratio's
shortfall is the drain's CPU slowing the emulator on the shared cores rather than the drain
failing to keep the emulator busy.

`--ceiling` measures that shortfall unpinned: after each drain, raw again (wrk, as long as the
raw phase) beside two busy loops spinning what the drain's worker and PostgreSQL used of a
core in the round, each at its priority. The emulator's rate there is the ratio's ceiling on
cores shared that much, whatever the drain did with them; the drain's rate against it says how
well the drain keeps the emulator busy. Then raw once more beside PostgreSQL's loop alone: the
ceiling of a drain whose worker cost no CPU at all, recording its sends in a PostgreSQL on the
same cores (the first ceiling counts a client twice, wrk's and the worker's sending child; this
one does not). An analysis too: the loops take CPU, not the locks, sockets and caches the
drain's processes take.

    .venv/bin/python bench/push_drain.py [--pushes 10000] [--rounds 3]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--redis-url redis://127.0.0.1:6379/9]
        [--worker-niceness 10] [--emulator-cpu N] [--ceiling] [--profile FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import requests
from loadgen import Request, Result, require_wrk, run_wrk
from servers import (
    clean_up_on_sigterm,
    create_fresh_database,
    drop_fresh_database,
    migrate,
    start_emulator,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from prod_like import BACKGROUND_NICENESS  # noqa: E402

BIN = Path(sys.executable).parent
APPID, SECRET = "wx_bench_push", "bench-push-secret"
TEMPLATE = "policy_push"
FIRST_USER = 20_000_000
RAW_OPENIDS = 100
CORES = os.cpu_count() or 1


def subscribe(base_url: str, openids: list[str], count: int) -> None:
    """Log each openid in at the emulator and tap 允许 `count` times (untimed set-up)."""
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def one(openid: str) -> None:
        http.post(
            f"{base_url}/_emulator/login", json={"openid": openid, "appid": APPID}, timeout=10
        ).raise_for_status()
        http.post(
            f"{base_url}/_emulator/subscriptions",
            json={"openid": openid, "template_id": TEMPLATE, "count": count, "appid": APPID},
            timeout=10,
        ).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, openids))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children's trees (the worker and its batch sender)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return cpu_seconds(pid) + sum(tree_cpu_seconds(int(c)) for c in children.stdout.split())


def postgres_cpu_seconds() -> float:
    """CPU used so far by this machine's PostgreSQL processes (server and backends; 0 when the
    database runs elsewhere)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return total


def busy_cpu_seconds() -> float:
    """CPU the whole machine has spent on anything but idling and waiting for I/O (/proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# Spins a share of one core (argv: share, seconds) in 10 ms periods: busy, then asleep.
_SPIN = """
import sys, time
share, until = float(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < until:
    busy_until = time.monotonic() + share * 0.01
    while time.monotonic() < busy_until:
        pass
    time.sleep((1 - share) * 0.01)
"""


def niced(niceness: int) -> tuple[str, ...]:
    """The argv prefix that starts a command at `niceness` (none for 0)."""
    return ("nice", "-n", str(niceness)) if niceness else ()


def spin(share: float, seconds: float, niceness: int) -> subprocess.Popen[bytes]:
    """A process that keeps `share` of one core busy for `seconds`, at `niceness`."""
    return subprocess.Popen(
        [*niced(niceness), sys.executable, "-c", _SPIN, f"{min(share, 1.0):.3f}", f"{seconds:.2f}"]
    )


def raw_beside(
    base_url: str,
    load: list[Request],
    connections: int,
    seconds: float,
    loops: list[tuple[float, int]],
) -> tuple[float, Result]:
    """The emulator's raw rate (wrk, `seconds`) beside busy loops of (share of a core,
    niceness), and wrk's result."""
    spinners = [spin(share, seconds + 1, niceness) for share, niceness in loops]
    try:
        time.sleep(0.3)  # the loops are spinning
        before = emulator_sent(base_url)
        beside = run_wrk(base_url, load, connections=connections, seconds=seconds)
        return (emulator_sent(base_url) - before) / beside.seconds, beside
    finally:
        for spinner in spinners:
            spinner.wait(30)


def pin(pid: int, cpus: list[int]) -> None:
    """Keep every thread of a process (and the threads it starts later) on these CPUs."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def emulator_sent(base_url: str) -> int:
    return int(requests.get(f"{base_url}/_emulator/stats", timeout=10).json()["messages_sent"])


def seed_users(url: str, n: int, rounds: int) -> int:
    """The department and the users with `rounds` one-time grants each; returns the department."""
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        department = cur.execute(
            "INSERT INTO departments (code, name) VALUES ('PY-TSJ', '番禺区推送基准局') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        with cur.copy("COPY users (id, openid, created_at, disabled) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row((FIRST_USER + i, f"o_push_{i:06d}", now, False))
        with cur.copy(
            "COPY subscription_grants (user_id, template_id, one_time_remaining, long_term, created_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row((FIRST_USER + i, TEMPLATE, rounds, False, now))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"
        )
        conn.commit()
    return int(department)


def seed_round(url: str, department: int, n: int, index: int) -> int:
    """A new policy and `n` waiting pushes to `n` new enterprises (COPY); returns the policy id."""
    now = dt.datetime.now(dt.UTC)
    first = 1 + index * n
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        policy = cur.execute(
            "INSERT INTO policies (department_id, title, doc_number, summary, benefit_kind, delivery,"
            " status, criteria_version, published_at, search_text, created_at, updated_at)"
            " VALUES (%s, %s, %s, '推送基准', 'subsidy', 'automatic', 'published', 0, %s, '', %s, %s) RETURNING id",
            (department, f"推送基准政策第{index}轮", f"番测〔2026〕推送{index}号", now, now, now),
        ).fetchone()[0]  # type: ignore[index]
        with cur.copy(
            "COPY registry_enterprises (id, uscc, name, legal_rep_name, status, registered_town, synced_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row(
                    (
                        first + i,
                        f"P{first + i:017d}",
                        f"推送基准企业{first + i}",
                        "推送",
                        "存续",
                        "市桥街",
                        now,
                    )
                )
        with cur.copy(
            "COPY enterprise_bindings (user_id, enterprise_id, role, status, created_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row((FIRST_USER + i, first + i, "legal_representative", "active", now))
        with cur.copy(
            "COPY policy_pushes (policy_id, enterprise_id, user_id, status, due_at, attempts, claim_token, created_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row((policy, first + i, FIRST_USER + i, "waiting", now, 0, 0, now))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('registry_enterprises', 'id'), (SELECT max(id) FROM registry_enterprises))"
        )
        conn.commit()
        conn.autocommit = True
        for table in (
            "policy_pushes",
            "enterprise_bindings",
            "registry_enterprises",
            "notification_outbox",
        ):
            cur.execute(f"ANALYZE {table}")
    return int(policy)


def push_statuses(conn: psycopg.Connection[Any], policy: int) -> dict[str, int]:
    """The round's pushes by status."""
    rows = conn.execute(
        "SELECT status, count(*) FROM policy_pushes WHERE policy_id = %s GROUP BY status",
        (policy,),
    ).fetchall()
    return {str(status): int(count) for status, count in rows}


def settled(conn: psycopg.Connection[Any], policy: int) -> bool:
    """Whether none of the round's pushes waits, is claimed or is in flight any more.

    Polled every 50 ms during the drain, so it must cost next to nothing: on a connection the
    caller keeps open (a new one each time cost the machine 12 ms of CPU, a backend forked and
    authenticated) that reads through the index on status (`watcher`). Counting the round's
    10,000 pushes by status instead cost PostgreSQL about 4 ms a poll (a sequential scan), CPU
    taken from the drain phase alone.
    """
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM policy_pushes WHERE status IN ('waiting', 'claimed', 'in_flight')"
        " AND policy_id = %s)",
        (policy,),
    ).fetchone()
    return not (row and row[0])


def watcher(url: str) -> psycopg.Connection[Any]:
    """The connection `settled` polls on. The bench's freshly copied rows have no statistics
    (and this machine runs no autovacuum), so the planner would scan the whole table for the
    unsettled pushes each time; this connection alone is told not to."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET enable_seqscan = off")
    return conn


def exactly_once(url: str, policy: int, n: int) -> list[str]:
    """What SQL says is wrong with the round's pushes (empty: each sent exactly once)."""
    problems = []
    with psycopg.connect(url) as conn:
        statuses: dict[str, int] = dict(
            conn.execute(
                "SELECT status, count(*) FROM policy_pushes WHERE policy_id = %s GROUP BY status",
                (policy,),
            ).fetchall()
        )
        if statuses != {"sent": n}:
            problems.append(f"push statuses {statuses}")
        doubled, unmatched = conn.execute(
            "SELECT count(*) FILTER (WHERE sent > 1), count(*) FILTER (WHERE sent <> 1) FROM ("
            " SELECT p.id, count(o.id) FILTER (WHERE o.status = 'sent') AS sent FROM policy_pushes p"
            " LEFT JOIN notification_outbox o ON o.dedupe_key LIKE 'policy-push:' || p.id || ':%%'"
            " WHERE p.policy_id = %s GROUP BY p.id) s",
            (policy,),
        ).fetchone()  # type: ignore[misc]
        if doubled or unmatched:
            problems.append(
                f"notification rows: {doubled} pushes with two sent, {unmatched} without exactly one"
            )
    return problems


def emulator_per_user(base_url: str, title: str, n: int) -> list[str]:
    """What the emulator says is wrong: each user must have received the round's policy once."""
    messages = requests.get(f"{base_url}/_emulator/messages", timeout=60).json()["messages"]
    per_user = Counter(
        m["touser"]
        for m in messages
        if m["touser"].startswith("o_push_") and m["data"].get("thing1") == title[:20]
    )
    problems = []
    if len(per_user) != n:
        problems.append(f"the emulator has messages for {len(per_user)} of {n} users")
    if any(count != 1 for count in per_user.values()):
        problems.append(
            f"{sum(1 for c in per_user.values() if c != 1)} users received it more than once"
        )
    return problems


def raw_request(token: str, title: str) -> list[Request]:
    """The body the app sends for a policy push (`WeChatClient.send_subscribe_message`)."""
    data = {
        "thing1": title[:20],
        "thing2": "番禺区推送基准局",
        "thing3": "长期有效",
        "thing4": "推送基准",
    }
    return [
        Request(
            "POST",
            f"/cgi-bin/message/subscribe/send?access_token={token}",
            body=json.dumps(
                {
                    "touser": f"o_raw_{i:03d}",
                    "template_id": TEMPLATE,
                    "data": {k: {"value": v} for k, v in data.items()},
                    "miniprogram_state": "formal",
                    "lang": "zh_CN",
                    "page": f"pages/policy/detail?id=1&enterprise={i}",
                },
                ensure_ascii=False,
            ),
        )
        for i in range(RAW_OPENIDS)
    ]


def main() -> None:
    clean_up_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-threads", type=int, default=4, help="dramatiq --threads")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument(
        "--worker-niceness",
        type=int,
        default=BACKGROUND_NICENESS,
        help="the worker's niceness (default: the production-like topology's, for its workers)",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="after each drain, raw again beside busy loops spinning the CPU the drain's worker"
        " and PostgreSQL used, then beside PostgreSQL's alone (an analysis: the emulator's rate"
        " on cores shared that much)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--profile",
        metavar="SVG",
        help="py-spy record the worker during the drains (.txt: collapsed stacks)",
    )
    parser.add_argument(
        "--emulator-cpu",
        type=int,
        metavar="N",
        help="pin the emulator to CPU N and the worker to the others, in both phases"
        " (WeChat on hardware of its own, as in production; PostgreSQL, Redis and wrk float)",
    )
    args = parser.parse_args()
    require_wrk()
    n, rounds = args.pushes, args.rounds

    name = f"push_bench_{os.getpid()}"
    raw_url = create_fresh_database(args.admin_url, name)
    log_file = Path(tempfile.gettempdir()) / f"push-bench-{os.getpid()}.log"
    emulator, base_url = start_emulator(APPID, SECRET)
    others = sorted(set(range(CORES)) - {args.emulator_cpu})
    if args.emulator_cpu is not None:
        if not others:
            parser.error("--emulator-cpu needs a machine with another CPU for the worker")
        pin(emulator.pid, [args.emulator_cpu])
    namespace = f"push-bench-{os.getpid()}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": raw_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "SEED_DEMO_DATA": "0",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": args.redis_url,
        "JOB_RUNNER": "dramatiq",
        "DRAMATIQ_NAMESPACE": namespace,
        "WECHAT_API_BASE": base_url,
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_TOKEN_CACHE": "redis",
        "NOTIFY_SEND_RATE_LIMIT": "100000",
        "POLICY_PUSH_QUIET_HOURS": "00:00-00:00",
    }
    worker = profiler = None
    try:
        migrate(env)
        print(f"database {name}; {n:,} users subscribed at the emulator ...", flush=True)
        department = seed_users(raw_url, n, rounds)
        subscribe(base_url, [f"o_push_{i:06d}" for i in range(n)], rounds)
        subscribe(
            base_url,
            [f"o_raw_{i:03d}" for i in range(RAW_OPENIDS)],
            rounds * n // RAW_OPENIDS * 3 + 1000,
        )
        token = requests.post(
            f"{base_url}/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
            timeout=5,
        ).json()["access_token"]

        os.environ.update(env)
        from app import create_app
        from app.policies.jobs import kick
        from app.policies.push_schedule import PushSettings

        app = create_app()
        settings = PushSettings.from_config(app.config)
        connections = settings.connections
        with log_file.open("ab") as log:
            worker = subprocess.Popen(
                [
                    *niced(args.worker_niceness),
                    str(BIN / "dramatiq"),
                    "app.jobs.worker",
                    "--processes",
                    "1",
                    "--threads",
                    str(args.worker_threads),
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        time.sleep(3)  # the worker imports the app and joins the queues
        children = subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True
        ).stdout.split()
        worker_pid = int(children[0]) if children else worker.pid
        if args.emulator_cpu is not None:
            for pid in (worker.pid, *map(int, children)):
                pin(pid, others)
        if args.profile:
            profiler = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "-o",
                    args.profile,
                    "-f",
                    "raw" if args.profile.endswith(".txt") else "flamegraph",
                    "--gil",
                    "-r",
                    "100",
                    "-p",
                    children[0] if children else str(worker.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        print(
            f"production-like: PostgreSQL, Redis ({args.redis_url}) for Dramatiq and the shared send-rate limiter,"
            f" INFO JSON logs ({log_file}), one Dramatiq worker process x {args.worker_threads} threads"
            f" at niceness {args.worker_niceness},"
            f" claims of {settings.claim_size} sent {settings.batch} at a time, {settings.connections} concurrent sends; quiet hours off;"
            f" raw: wrk -c{connections} (the drain's concurrent sends), the same message bodies"
            + (
                f"; PINNED: the emulator on CPU {args.emulator_cpu}, the worker on {others}\n"
                if args.emulator_cpu is not None
                else "\n"
            ),
            flush=True,
        )
        warm = run_wrk(base_url, raw_request(token, "预热"), connections=connections, seconds=2)
        expected = warm.rate
        raws: list[float] = []
        drains: list[float] = []
        totals: list[float] = []  # the machine's CPU per message drained
        ceilings: list[float] = []  # raw beside the drain's own CPU (--ceiling)
        database_ceilings: list[float] = []  # raw beside PostgreSQL's share alone (--ceiling)
        problems: list[str] = []
        for index in range(rounds):
            policy = seed_round(raw_url, department, n, index)
            title = f"推送基准政策第{index}轮"
            before, emulator_cpu = emulator_sent(base_url), cpu_seconds(emulator.pid)
            # wrk runs for a time, not a count: as long as `n` messages took in the last round.
            raw = run_wrk(
                base_url, raw_request(token, title), connections=connections, seconds=n / expected
            )
            raw_sent = emulator_sent(base_url) - before
            raw_cpu = (cpu_seconds(emulator.pid) - emulator_cpu) / max(raw_sent, 1) * 1000
            if raw.refused:
                problems.append(f"raw round {index}: {raw.refused} refused ({raw.first_refusal})")
            raws.append(raw_sent / raw.seconds)
            expected = raws[-1]

            before, emulator_cpu = emulator_sent(base_url), cpu_seconds(emulator.pid)
            worker_cpu, postgres_cpu, busy_cpu = (
                tree_cpu_seconds(worker_pid),
                postgres_cpu_seconds(),
                busy_cpu_seconds(),
            )
            with watcher(raw_url) as poll:
                started = time.perf_counter()
                kick(app)
                while time.perf_counter() - started < 600 and not settled(poll, policy):
                    time.sleep(0.05)
                drain_s = time.perf_counter() - started
                statuses = push_statuses(poll, policy)
            drained = emulator_sent(base_url) - before
            drain_cpu = (cpu_seconds(emulator.pid) - emulator_cpu) / max(drained, 1) * 1000
            worker_s = tree_cpu_seconds(worker_pid) - worker_cpu
            postgres_s = postgres_cpu_seconds() - postgres_cpu
            worker_ms = worker_s / max(drained, 1) * 1000
            postgres_ms = postgres_s / max(drained, 1) * 1000
            busy_s = busy_cpu_seconds() - busy_cpu
            totals.append(busy_s / max(drained, 1) * 1000)
            busy_share = busy_s / (drain_s * CORES)
            drains.append(statuses.get("sent", 0) / drain_s)
            round_problems = exactly_once(raw_url, policy, n) + emulator_per_user(
                base_url, title, n
            )
            if drained != n:
                round_problems.append(f"the emulator received {drained} messages of {n}")
            problems += [f"round {index}: {p}" for p in round_problems]
            ceiling = ""
            if args.ceiling:
                # The drain's processes' CPU as busy loops at their priorities, beside a raw
                # load as long as the round's: what the emulator does on cores shared so.
                # Once with the worker's and PostgreSQL's, once with PostgreSQL's alone (a
                # worker that cost nothing: the most any drain recording here could reach).
                worker_cores, postgres_cores = worker_s / drain_s, postgres_s / drain_s
                request = raw_request(token, title)
                rates = []
                for loops in (
                    [(worker_cores, args.worker_niceness), (postgres_cores, 0)],
                    [(postgres_cores, 0)],
                ):
                    rate, beside = raw_beside(base_url, request, connections, n / raws[-1], loops)
                    rates.append(rate)
                    if beside.refused:
                        problems.append(
                            f"ceiling round {index}: {beside.refused} refused ({beside.first_refusal})"
                        )
                ceilings.append(rates[0])
                database_ceilings.append(rates[1])
                ceiling = (
                    f"\n         raw beside busy loops of the drain's own CPU (worker {worker_cores:.2f},"
                    f" PostgreSQL {postgres_cores:.2f} of a core): {ceilings[-1]:6.0f}/s,"
                    f" {ceilings[-1] / raws[-1]:.0%} of raw; the drain {drains[-1] / ceilings[-1]:.0%} of that;"
                    f" beside PostgreSQL's alone: {database_ceilings[-1]:6.0f}/s, {database_ceilings[-1] / raws[-1]:.0%} of raw"
                )
            print(
                f"round {index}: raw {raws[-1]:6.0f}/s ({raw_sent} msgs, client p50 {raw.p50:.1f} ms)"
                f"   drain {drains[-1]:6.0f}/s ({statuses.get('sent', 0)} sent in {drain_s:.1f} s)"
                f"   ratio {drains[-1] / raws[-1]:.0%}   exactly once: {'yes' if not round_problems else 'NO'}"
                f"\n         CPU per message: emulator {raw_cpu:.2f} ms (raw) / {drain_cpu:.2f} ms (drain), worker {worker_ms:.2f} ms,"
                f" PostgreSQL {postgres_ms:.2f} ms, the machine in all {totals[-1]:.2f} ms ({busy_share:.0%} of {CORES} cores busy)"
                + ceiling,
                flush=True,
            )
        ratios = [d / r for d, r in zip(drains, raws, strict=True)]
        ratio, rate = statistics.median(ratios), statistics.median(drains)
        print(f"\nmedian over {rounds} rounds of {n:,} messages:")
        print(f"  emulator raw send rate (wrk -c{connections}) : {statistics.median(raws):6.0f} /s")
        print(f"  push drain (Dramatiq worker)       : {rate:6.0f} /s")
        print(
            f"  drain / raw, same round            : {ratio:6.0%}  -> {'met' if ratio >= 0.85 else 'NOT met'} (>= 85 %)"
        )
        print(
            f"  drain rate                         : {rate:6.0f} /s -> {'met' if rate >= 500 else 'NOT met'} (>= 500/s)"
        )
        print(
            f"  exactly once (SQL and the emulator's count): {'met' if not problems else 'NOT met'}"
        )
        # Raw is the emulator alone (about one core: its GIL); the drain runs the emulator, the
        # worker, PostgreSQL and the kernel's share on the same cores. The ratio's CPU budget:
        budget = CORES / (0.85 * statistics.median(raws)) * 1000
        print(
            f"  CPU budget: 85 % of the raw rate on {CORES} cores allows {budget:.2f} ms of the machine's CPU"
            f" per message in all; the drain used {statistics.median(totals):.2f} ms"
        )
        if ceilings:
            shares = [c / r for c, r in zip(ceilings, raws, strict=True)]
            print(
                f"  raw beside the drain's own CPU     : {statistics.median(shares):6.0%} of raw (the ratio's"
                f" ceiling on these shared cores); the drain {statistics.median(d / c for d, c in zip(drains, ceilings, strict=True)):.0%} of it"
            )
            print(
                f"  raw beside PostgreSQL's CPU alone  : {statistics.median(c / r for c, r in zip(database_ceilings, raws, strict=True)):6.0%} of raw"
                " (the ceiling of a drain whose worker cost nothing, recording in this database)"
            )
        for problem in problems:
            print(f"    {problem}")
    finally:
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait(30)
        if worker is not None:
            os.killpg(worker.pid, 15)
            worker.wait(30)
        emulator.terminate()
        from redis import Redis

        redis = Redis.from_url(args.redis_url)
        for key in redis.scan_iter(f"{namespace}*"):
            redis.delete(key)
        if not args.keep:
            drop_fresh_database(args.admin_url, name)
            print(f"\ndropped database {name}")


if __name__ == "__main__":
    main()

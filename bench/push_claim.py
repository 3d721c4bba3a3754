"""Benchmark: the push drain's own CPU per push, by claim and batch size, on PostgreSQL.

`push_drain.py` measures the drain against the WeChat emulator on shared cores, where the
emulator's own CPU and its pace hide what the drain itself costs. This bench takes WeChat out:
the drain loop (`push_drain.drain_once`, as the actor runs it, one loop) runs in this process
against a WeChat that answers every message at once, over a round of `--pushes` waiting pushes
(made with COPY, as `push_drain.py` makes them). Per round: this process's CPU per push (the
claim, its rules, the attempts' rows, the records; no HTTP) and the machine's PostgreSQL
processes' CPU per push. The configurations (`--configs`, claim x batch) are interleaved over
`--rounds` rounds, each on a round of its own, and compared with the first in the same run.

    .venv/bin/python bench/push_claim.py [--pushes 2000] [--rounds 3]
        [--configs 50x50,200x50,200x200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from push_drain import postgres_cpu_seconds, seed_round, seed_users
from servers import create_fresh_database, drop_fresh_database, migrate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


class AnswersAtOnce:
    """A WeChat that accepts every message without a round trip."""

    def send_subscribe_messages(
        self, messages: Any, *, connections: int, on_ready_for_next: Any = None
    ) -> list[None]:
        return [None] * len(messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="50x50,200x50,200x200", help="claim x batch, ...")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    configs = [tuple(int(part) for part in text.split("x")) for text in args.configs.split(",")]
    n = args.pushes

    name = f"push_claim_bench_{os.getpid()}"
    url = create_fresh_database(args.admin_url, name)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://", 1),
        "SEED_DEMO_DATA": "0",
        "LOG_LEVEL": "WARNING",
        "JOB_RUNNER": "manual",
        "POLICY_PUSH_QUIET_HOURS": "00:00-00:00",
    }
    try:
        migrate(env)
        department = seed_users(url, n, len(configs) * args.rounds)
        os.environ.update(env)
        from app import create_app
        from app.db import utcnow
        from app.policies import push_drain
        from app.policies.push_schedule import PushSettings

        app = create_app()
        base = PushSettings.from_config(app.config)
        print(
            f"database {name}; {n:,} pushes a round, one drain loop in this process against a"
            " WeChat answering at once; CPU per push of this process and of PostgreSQL\n",
            flush=True,
        )
        figures: dict[tuple[int, ...], list[tuple[float, float]]] = {c: [] for c in configs}
        index = 0
        for round_number in range(args.rounds):
            for claim, batch in configs:
                seed_round(url, department, n, index)
                index += 1
                settings = replace(base, claim=claim, batch=batch)
                sent = 0
                with app.app_context():
                    cpu, postgres = time.process_time(), postgres_cpu_seconds()
                    while True:
                        stats = push_drain.drain_once(
                            app.extensions["db"].sessionmaker,
                            AnswersAtOnce(),
                            now_fn=utcnow,
                            settings=settings,
                            catalog=app.extensions["notify_templates"],
                        )
                        sent += stats.claimed
                        if stats.taken < stats.limit or not stats.taken:
                            break
                    cpu = (time.process_time() - cpu) / max(sent, 1) * 1000
                    postgres = (postgres_cpu_seconds() - postgres) / max(sent, 1) * 1000
                if sent != n:
                    print(f"round {round_number}: claim {claim} x {batch}: {sent} of {n} sent")
                figures[(claim, batch)].append((cpu, postgres))
                print(
                    f"round {round_number}: claim {claim:4d} sent {batch:4d} at a time:"
                    f" worker {cpu:.3f} ms/push, PostgreSQL {postgres:.3f} ms/push",
                    flush=True,
                )
        first = configs[0]
        worker0 = statistics.median(w for w, _ in figures[first])
        postgres0 = statistics.median(p for _, p in figures[first])
        print(
            f"\nmedian over {args.rounds} rounds of {n:,} pushes"
            f" (against claim {first[0]} x {first[1]}):"
        )
        for (claim, batch), rows in figures.items():
            worker = statistics.median(w for w, _ in rows)
            postgres = statistics.median(p for _, p in rows)
            print(
                f"  claim {claim:4d} x {batch:4d}:"
                f" worker {worker:.3f} ms/push ({worker / worker0:.2f}x),"
                f" PostgreSQL {postgres:.3f} ms/push ({postgres / postgres0:.2f}x)"
            )
    finally:
        drop_fresh_database(args.admin_url, name)
        print(f"\ndropped database {name}")


if __name__ == "__main__":
    main()

"""`flask jobs ...`: the scheduler process of the periodic work."""

from __future__ import annotations

import signal
import threading

import click
from flask.cli import AppGroup

from app.extensions import current_flask_app

jobs_cli = AppGroup("jobs", help="Background jobs: the scheduler of the periodic work.")


@jobs_cli.command("scheduler")
@click.option("--tick", default=1.0, show_default=True, help="seconds between ticks")
def scheduler(tick: float) -> None:
    """Lead (or wait to lead) the periodic work: sweeps, audit seal, outbox sweeps."""
    from app.jobs.scheduler import build_scheduler

    runner = build_scheduler(current_flask_app(), tick_seconds=tick)
    stop = threading.Event()
    # SIGTERM and Ctrl-C both hand the lease back, so another scheduler takes over at once.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner.run(stop)

"""`flask policies ...`: profile import, synthetic enterprises, the push worker, expiry."""

from __future__ import annotations

import random
import signal
import time

import click
from flask.cli import AppGroup

from app.db import get_session, utcnow
from app.extensions import current_flask_app
from app.policies import importer, jobs, service

policies_cli = AppGroup("policies", help="Enterprise profiles, policies and policy push.")


@policies_cli.command("import-profiles")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_profiles(path: str) -> None:
    """Import enterprise profiles from a registry CSV (idempotent); list rejected rows."""
    session = get_session()
    report = importer.import_csv(session, path, now=utcnow())
    session.commit()
    click.echo(
        f"read {report.read}: created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {len(report.rejected)}"
    )
    for line, uscc, reason in report.rejected:
        click.echo(f"  line {line} {uscc or '-'}: {reason}", err=True)


@policies_cli.command("generate")
@click.option("--count", default=1000, show_default=True)
@click.option("--seed", default=2026, show_default=True)
@click.option("--start", default=0, show_default=True, help="first serial (USCCs follow it)")
def generate(count: int, seed: int, start: int) -> None:
    """Insert N synthetic Panyu enterprises with profiles (multi-row inserts)."""
    from app.policies.demo import insert_synthetic

    inserted = insert_synthetic(get_session(), count, random.Random(seed), start=start)  # noqa: S311  # nosec B311  # synthetic benchmark data, never a secret
    get_session().commit()
    click.echo(f"inserted {inserted} synthetic enterprises")


@policies_cli.command("expire")
def expire() -> None:
    """Mark published policies past their expiry date as expired."""
    session = get_session()
    count = service.expire_due(session, now=utcnow())
    session.commit()
    click.echo(f"expired {count} policies")


@policies_cli.command("push-worker")
@click.option("--threads", default=2, show_default=True)
@click.option("--until-idle", is_flag=True, help="exit once nothing is due")
def push_worker(threads: int, until_idle: bool) -> None:
    """Drain the policy push outbox (the global send rate is shared through Redis)."""
    app = current_flask_app()
    runner = jobs.PushRunner(app, threads=threads)
    if until_idle:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            while sum(pool.map(lambda _: runner.run_once(), range(threads))):
                pass
        return
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.start()
    try:
        while not runner.stopping.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        runner.stop()

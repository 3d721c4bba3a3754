"""`flask` commands, grouped by domain; each domain registers its own group here."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from app.audit import service as audit_service
from app.db import get_db, get_session

audit_cli = AppGroup("audit", help="The hash-chained audit log.")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute the audit chain and report the first tampered entry, if any."""
    report = audit_service.verify(get_session())
    if report.ok:
        click.echo(
            f"audit chain intact: {report.entries} entries"
            + (f" ({report.pending} awaiting sealing)" if report.pending else "")
        )
        return
    click.echo(
        f"audit chain BROKEN at seq {report.first_bad_seq}: {report.reason} "
        f"({report.entries} entries read)",
        err=True,
    )
    raise SystemExit(1)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Chain the entries not sealed yet (the job runner does this every few seconds)."""
    sealed = audit_service.seal_all(get_db().sessionmaker)
    click.echo(f"sealed {sealed} audit entries")


def register_cli(app: Flask) -> None:
    from app.appointments.cli import appointments_cli
    from app.demo import demo_cli
    from app.identity.cli import staff_cli
    from app.migrations_cli import db_cli
    from app.policies.cli import policies_cli
    from app.seals.cli import seals_cli

    groups = (audit_cli, staff_cli, db_cli, demo_cli, policies_cli, seals_cli, appointments_cli)
    for group in groups:
        app.cli.add_command(group)

"""`flask` commands, grouped by domain; each domain registers its own group here."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from app.appointments.cli import appointments_cli
    from app.audit.cli import audit_cli
    from app.demo import demo_cli
    from app.identity.cli import staff_cli
    from app.jobs.cli import jobs_cli
    from app.matters.cli import matters_cli
    from app.migrations_cli import db_cli
    from app.ops.cli import ops_cli
    from app.organisation.cli import organisation_cli
    from app.policies.cli import policies_cli
    from app.seals.cli import seals_cli
    from app.security.cli import keys_cli

    groups = (
        audit_cli,
        staff_cli,
        db_cli,
        demo_cli,
        policies_cli,
        seals_cli,
        appointments_cli,
        matters_cli,
        organisation_cli,
        keys_cli,
        ops_cli,
        jobs_cli,
    )
    for group in groups:
        app.cli.add_command(group)

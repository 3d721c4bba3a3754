"""`flask organisation load`: the district's departments and halls (app/organisation/catalogue.py),
the reference data the matter catalogue, staff scopes and the queue name. Idempotent."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.db import get_session
from app.organisation.catalogue import load_organisation

organisation_cli = AppGroup("organisation", help="The district's departments and halls.")


@organisation_cli.command("load")
def load() -> None:
    """Create the departments and halls that are missing (run before `flask matters load`)."""
    session = get_session()
    departments, halls = load_organisation(session)
    session.commit()
    click.echo(f"{len(departments)} departments, {len(halls)} halls")

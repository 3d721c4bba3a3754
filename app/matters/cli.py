"""`flask matters load`: publish the catalogue files (data/matters) into the database."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app.db import get_session, utcnow
from app.errors import DomainError
from app.matters.catalogue import load_directory
from config import PROJECT_ROOT

CATALOGUE_DIR = PROJECT_ROOT / "data" / "matters"

matters_cli = AppGroup("matters", help="The matter catalogue (政务服务事项).")


@matters_cli.command("load")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def load(directory: Path | None) -> None:
    """Publish every version file not yet published (idempotent; all or nothing)."""
    session = get_session()
    try:
        results = load_directory(session, directory or CATALOGUE_DIR, now=utcnow())
    except DomainError as error:  # nothing is kept: the catalogue loads whole or not at all
        session.rollback()
        raise click.ClickException(f"{error.message} {error.details}") from None
    session.commit()
    created = [r.version for r in results if r.created]
    click.echo(f"{len(results)} matter versions in the catalogue, {len(created)} newly published")

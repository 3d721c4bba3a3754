"""`flask db ...`: Alembic migrations driven by the app's own database URL."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from flask.cli import AppGroup

from config import PROJECT_ROOT

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


def alembic_config(app: Flask) -> Config:
    """An Alembic config for `app`'s database, without an alembic.ini to keep in sync."""
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # ConfigParser treats % as interpolation; URLs may contain it (encoded passwords).
    config.set_main_option("sqlalchemy.url", app.config["DATABASE_URL"].replace("%", "%%"))
    return config


def upgrade_database(app: Flask, revision: str = "head") -> None:
    """Bring the app's database to `revision`."""
    command.upgrade(alembic_config(app), revision)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    upgrade_database(current_app, revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    command.downgrade(alembic_config(current_app), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    command.revision(alembic_config(current_app), message=message, autogenerate=True)


@db_cli.command("current")
def current() -> None:
    """Show the database's revision."""
    command.current(alembic_config(current_app))

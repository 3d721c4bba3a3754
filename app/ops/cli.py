"""`flask ops backup --to DIR` and `flask ops restore --from DIR` (README: Backups and restore)."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import AppGroup

from app.db import get_db, utcnow
from app.migrations_cli import alembic_config
from app.ops.backup import BackupError, Stores, create_backup, restore_backup

ops_cli = AppGroup("ops", help="Operations: backups and restores.")


@ops_cli.command("backup")
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A new folder for this backup (never an existing one).",
)
def backup(target: Path) -> None:
    """Back up the database and the file stores (documents, materials, audit checkpoints,
    seal PKI) into a new folder, with a manifest of checksums and row counts."""
    try:
        manifest = create_backup(
            get_db().engine, Stores.from_config(current_app.config), target, now=utcnow()
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    rows = sum(manifest["row_counts"].values())
    files = sum(manifest["stores"].values())
    click.echo(
        f"backup written to {target}: {manifest['database']} at revision "
        f"{manifest['alembic_revision']}, {rows} rows, {files} stored files"
    )


@ops_cli.command("restore")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The backup's folder.",
)
@click.option("--force", is_flag=True, help="Replace a database and stores that are not empty.")
def restore(source: Path, force: bool) -> None:
    """Restore a backup into DATABASE_URL and the configured store folders, after checking
    its checksums; then check the revision and row counts."""
    try:
        restored = restore_backup(
            get_db().engine, Stores.from_config(current_app.config), source, force=force
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"restored {source} (taken {restored.manifest['created_at']}): revision "
        f"{restored.revision}, row counts match the backup's"
    )
    head = ScriptDirectory.from_config(alembic_config(current_app)).get_current_head()
    if restored.revision != head:
        click.echo(
            f"the code's migrations are at {head}: run `flask db upgrade` before serving",
            err=True,
        )
    click.echo("now check it: `flask audit verify`, and verify a few documents (README)")

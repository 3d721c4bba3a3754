"""`flask keys ...`: which personal-data key seals what, and re-sealing under the current one.

The runbook ("Key rotation" in README.md): put the new key first in DATA_KEYS, restart,
`flask keys reencrypt-data`, check `flask keys data-report` shows only the new key id, then
remove the old key from DATA_KEYS.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.db import get_db, get_session
from app.security import get_cipher
from app.security.rotation import key_report, reencrypt_all, unlisted_sealed_columns

keys_cli = AppGroup("keys", help="Personal-data keys (DATA_KEYS): report and re-encrypt.")


def _refuse_unlisted() -> None:
    unlisted = unlisted_sealed_columns()
    if unlisted:
        raise click.ClickException(
            "sealed columns missing from app/security/rotation.py: " + ", ".join(unlisted)
        )


@keys_cli.command("data-report")
def data_report() -> None:
    """Count the stored values of each sealed column by the id of the key that sealed them."""
    _refuse_unlisted()
    cipher = get_cipher()
    click.echo(f"current data key: {cipher.current_key_id}")
    for column, counts in key_report(get_session()).items():
        by_key = ", ".join(f"{kid}={n}" for kid, n in sorted(counts.items())) or "empty"
        click.echo(f"{column}: {by_key}")


@keys_cli.command("reencrypt-data")
@click.option("--batch", default=500, show_default=True, help="Rows per transaction.")
def reencrypt_data(batch: int) -> None:
    """Re-seal every value not under the current data key (the first of DATA_KEYS), in
    batches; safe to run again and beside the running app. Exit status 1 if any value could
    not be opened (its key is no longer listed)."""
    _refuse_unlisted()
    cipher = get_cipher()
    click.echo(f"re-encrypting under data key {cipher.current_key_id}")
    unreadable = 0
    for result in reencrypt_all(get_db().sessionmaker, cipher, batch=batch):
        line = f"{result.column}: {result.resealed} re-encrypted"
        if result.raced:
            line += f", {result.raced} changed meanwhile (already current)"
        if result.unreadable:
            line += (
                f", {len(result.unreadable)} unreadable (ids {', '.join(result.unreadable[:10])})"
            )
        click.echo(line)
        unreadable += len(result.unreadable)
    if unreadable:
        click.echo(f"{unreadable} values are sealed under a key no longer in DATA_KEYS", err=True)
        raise SystemExit(1)

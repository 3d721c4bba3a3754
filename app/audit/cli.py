"""`flask audit ...`: seal the chain, verify it, show the checkpoint public keys."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit import service as audit_service
from app.audit.chain import AuditChain
from app.audit.service import UNKNOWN_KEY_REASON
from app.db import get_db, get_session

audit_cli = AppGroup("audit", help="The hash-chained audit log.")


def _chain() -> AuditChain:
    return AuditChain.from_config(current_app.config)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute the chain's keyed links, hold it against the signed checkpoints, and report
    the first tampered entry or checkpoint, if any (exit status 1)."""
    chain = _chain()
    report = audit_service.verify(get_session(), chain)
    if report.ok:
        click.echo(
            f"audit chain intact: {report.entries} entries"
            + (f" ({report.pending} awaiting sealing)" if report.pending else "")
            + f", {report.checkpoints} checkpoints in {chain.checkpoints.directory}"
        )
        if report.entries and not report.checkpoints:
            click.echo(
                "warning: no checkpoint found: a truncation of the chain cannot be detected "
                "(is AUDIT_CHECKPOINT_DIR the folder the sealing job writes to?)",
                err=True,
            )
        return
    where = f"seq {report.first_bad_seq}" if report.first_bad_seq is not None else "checkpoints"
    click.echo(
        f"audit chain BROKEN at {where}: {report.reason} ({report.entries} entries read)",
        err=True,
    )
    if report.reason and report.reason.startswith(UNKNOWN_KEY_REASON):
        # A retired key removed from the setting, or a forged key id: either way nothing
        # from this entry on can be verified until the key is listed again.
        click.echo(
            "that key id is not in AUDIT_MAC_KEYS: list the retired key again after the "
            "current one (retired link keys stay listed for verification)",
            err=True,
        )
    raise SystemExit(1)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Chain the entries not sealed yet and checkpoint the head (the job runner does this
    every few seconds)."""
    sealed = audit_service.seal_all(get_db().sessionmaker, _chain())
    click.echo(f"sealed {sealed} audit entries")


@audit_cli.command("checkpoint-keys")
def audit_checkpoint_keys() -> None:
    """Print the checkpoint keys' Ed25519 public keys, for verifiers outside."""
    for key_id, public in _chain().signer.public_keys().items():
        click.echo(f"{key_id}: {public}")

"""`flask seals ...`: create or import the CA, create seals, publish CRLs."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask.cli import AppGroup

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.seals import get_seal_context
from app.seals.context import SealContext
from app.seals.demo import seed_seals
from app.seals.pki import ensure_dev_pki
from app.seals.rotation import rewrap_keys
from app.seals.trust import current_crl
from seals import pki as pki_lib
from seals.keys import KeyError_

seals_cli = AppGroup("seals", help="Electronic seals: CA, seals, CRLs.")


@seals_cli.command("init-ca")
def init_ca() -> None:
    """Create a development root CA and issuing CA in SEAL_PKI_DIR (never overwrites)."""
    # The context as made by the app, not `get_seal_context()`, which would create the
    # development PKI itself and so report that one already exists.
    ctx: SealContext = current_app.extensions["seals"]
    if not ensure_dev_pki(ctx):
        raise click.ClickException(f"a PKI already exists in {ctx.pki_dir}")
    click.echo(f"root and issuing CA created in {ctx.pki_dir}; CRLs at {ctx.crl_base_url}/")


@seals_cli.command("import-ca")
@click.option(
    "--chain", type=click.Path(exists=True, dir_okay=False), help="PEM chain, issuing CA first"
)
@click.option(
    "--key", type=click.Path(exists=True, dir_okay=False), help="PEM private key of the issuing CA"
)
@click.option("--pkcs12", type=click.Path(exists=True, dir_okay=False), help="PKCS#12 file instead")
@click.option("--password", envvar="SEAL_IMPORT_PASSWORD", default="", help="key/PKCS#12 password")
def import_ca(chain: str | None, key: str | None, pkcs12: str | None, password: str) -> None:
    """Import a real issuing CA (production); its key is stored envelope-encrypted."""
    ctx = get_seal_context()
    secret = password.encode() or None
    try:
        _pki, files = pki_lib.import_issuing_ca(
            ctx.software,
            crl_base_url=ctx.crl_base_url,
            chain_pem=Path(chain).read_bytes() if chain else None,
            key_pem=Path(key).read_bytes() if key else None,
            key_password=secret,
            pkcs12_data=Path(pkcs12).read_bytes() if pkcs12 else None,
            pkcs12_password=secret,
        )
        pki_lib.write_pki(ctx.pki_dir, files)
    except (pki_lib.PkiError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    ctx.reset_pki()
    click.echo(f"issuing CA imported into {ctx.pki_dir}")


@seals_cli.command("build-font")
def build_font() -> None:
    """Cut the CJK font down to GB 2312 once, into SEAL_FONT_CACHE_DIR (`make install` does)."""
    ctx: SealContext = current_app.extensions["seals"]
    click.echo(f"CJK font subset: {ctx.fonts.subset_path}")


@seals_cli.command("seed-demo")
def seed_demo() -> None:
    """Create the PKI if missing and the demo departments' seals."""
    session = get_session()
    created = seed_seals(session, actor=Actor.system(), now=utcnow())
    session.commit()
    click.echo(f"{created} demo seals created")


@seals_cli.command("crl")
@click.argument("name", type=click.Choice([pki_lib.ISSUING_CRL_NAME, pki_lib.ROOT_CRL_NAME]))
@click.argument("output", type=click.Path(dir_okay=False))
def write_crl(name: str, output: str) -> None:
    """Write the current CRL (DER) to a file, e.g. for a static web server."""
    crl = current_crl(get_session(), get_seal_context(), name, utcnow())
    Path(output).write_bytes(crl.public_bytes(serialization.Encoding.DER))
    click.echo(f"{name} CRL written to {output}")


@seals_cli.command("rewrap-keys")
def rewrap_keys_command() -> None:
    """Re-wrap every software seal and CA key under the current master key (the first of
    SEAL_MASTER_KEY); the old master key can be removed afterwards. Safe to run again."""
    ctx: SealContext = current_app.extensions["seals"]
    session = get_session()
    try:
        result = rewrap_keys(session, ctx)
    except KeyError_ as exc:
        message = f"{exc} (is the old key still listed in SEAL_MASTER_KEY?)"
        raise click.ClickException(message) from None
    session.commit()
    current = ctx.software.current_key_id
    click.echo(
        f"seal_keys: {result.rewrapped_rows} re-wrapped under {current}, "
        f"{result.current_rows} already under it"
    )
    for name in result.rewrapped_files:
        click.echo(f"{ctx.pki_dir / name}: re-wrapped under {current}")
    for name in result.current_files:
        click.echo(f"{ctx.pki_dir / name}: already under {current}")

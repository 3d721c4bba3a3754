"""Electronic seals: records, services and the app's wiring of the `seals` library.

Where things are:
    issuing.py       issue a sealed document (the one call other capabilities need)
    signatures.py    the signatures on a document: the applicant's, then the seal's
    lifecycle.py     create a seal, check who may use it, suspend / reactivate / revoke it
    trust.py         the certificates we issue, their revocation, CRLs and trust settings
    registry.py      issued documents: find by code, status, public view, revoke
    verification.py  check an uploaded PDF's signatures against the trust roots and registry
    pki.py           the development CA, created when none exists
    context.py       the library's settings and the per-app caches (`SealContext`)
    templates.py     what each kind of document prints
    models.py, errors.py, cli.py (`flask seals ...`), demo.py (demo seals)
"""

from __future__ import annotations

from flask import Flask, current_app

from app.seals.context import SealContext
from app.seals.pki import ensure_dev_pki


def init_app(app: Flask) -> None:
    """The app's seal context, and with it the caches that live as long as the app."""
    app.extensions["seals"] = SealContext.from_config(app.config)


def get_seal_context() -> SealContext:
    """The app's seal context; outside production, with a development PKI made on first use."""
    context: SealContext = current_app.extensions["seals"]
    if not context.has_pki() and current_app.config["ENV_NAME"] != "production":
        # Development and tests get a throwaway CA on first use; production imports its own.
        ensure_dev_pki(context)
    return context

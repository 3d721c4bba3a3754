"""The app's certificate authority on disk: a development PKI is created when none exists.

Production imports a real issuing CA instead (`flask seals import-ca`).
"""

from __future__ import annotations

import datetime as dt

from app.db import utcnow
from app.seals.context import SealContext
from seals import pki as pki_lib


def ensure_dev_pki(ctx: SealContext, now: dt.datetime | None = None) -> bool:
    """Create a development PKI if none exists; True if one was created."""
    if ctx.has_pki():
        return False
    _pki, files = pki_lib.init_dev_pki(
        ctx.software, crl_base_url=ctx.crl_base_url, now=now or utcnow()
    )
    pki_lib.write_pki(ctx.pki_dir, files)
    ctx.reset_pki()
    return True

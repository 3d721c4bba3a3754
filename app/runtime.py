"""Settings of a long-running serving process (gunicorn worker, Dramatiq worker).

`freeze_startup_heap` moves every object that exists once the app is built (modules, the
OpenAPI spec, mappers, compiled schemas: about 300,000 tracked objects) out of the cyclic
garbage collector's reach. A full collection walks every tracked object, and with that heap it
took ~170 ms with the GIL held, stalling every thread of the worker: the tail of the request
that happened to trigger it (usually the one allocating most, a sealed approval). Those objects
live as long as the process, so nothing is lost by never scanning them again.

`warm_caches` builds, before the first request (gunicorn's `post_worker_init`), what the first
sealed document of a process would otherwise build (the font's parsed metrics and glyphs, the
PKI), so it joins the frozen heap and no applicant pays for being first after a start or a
reload. What needs the database (CRLs and trust settings, each seal's signer and image, one
signature assembled around a placeholder: `app.seals.warm_up`) is built by a thread of its own
while the worker already serves: a database that is slow or away must not hold a worker's
start. Not on import of `wsgi`: every `flask --app wsgi` command would pay it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from app.seals.context import SealContext

log = logging.getLogger(__name__)


def warm_caches(app: Flask) -> threading.Thread | None:
    """Fill the seal context's per-process caches: those that need no database now, the
    signing caches in a background thread (returned; None when there is nothing to sign with).
    What is not built in time is built on first use, as before."""
    # Not `get_seal_context()`: outside production that makes a development PKI. None: gunicorn
    # reads ./gunicorn.conf.py for whatever it serves from here (the benches' floors too).
    context: SealContext | None = getattr(app, "extensions", {}).get("seals")
    if context is None:
        return None
    with app.app_context():
        try:
            context.fonts.warm()
            if not context.has_pki():
                return None
            _ = context.pki
        except Exception:  # a cold cache is slower, never wrong: the worker still starts
            log.warning("seal caches left cold", exc_info=True)
            return None
    thread = threading.Thread(
        target=_warm_signing, args=(app, context), name="warm-signing", daemon=True
    )
    thread.start()
    return thread


def _warm_signing(app: Flask, context: SealContext) -> None:
    from app.db import get_session, utcnow
    from app.seals.warm_up import warm_signing

    started = time.perf_counter()
    try:
        with app.app_context():
            session = get_session()
            try:
                seals = warm_signing(session, context, utcnow())
            finally:
                session.rollback()  # it only read; end the transaction before the pool has it
    except Exception:
        log.warning("seal signing caches left cold", exc_info=True)
        return
    log.info(
        "seal signing caches warmed",
        extra={"seals": seals, "ms": round((time.perf_counter() - started) * 1000)},
    )


def freeze_startup_heap() -> None:
    """Collect once, then exclude everything alive now from future collections."""
    gc.collect()
    gc.freeze()

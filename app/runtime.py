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
reload. Not on import of `wsgi`: every `flask --app wsgi` command would pay it.
"""

from __future__ import annotations

import gc
import logging

from flask import Flask

log = logging.getLogger(__name__)


def warm_caches(app: Flask) -> None:
    """Fill the seal context's per-process caches that need no database (a worker must start
    while the database is away). What cannot be built now is built on first use, as before."""
    from app.seals.context import SealContext

    # Not `get_seal_context()`: outside production that makes a development PKI. None: gunicorn
    # reads ./gunicorn.conf.py for whatever it serves from here (the benches' floors too).
    context: SealContext | None = getattr(app, "extensions", {}).get("seals")
    if context is None:
        return
    with app.app_context():
        try:
            context.fonts.warm()
            if context.has_pki():
                _ = context.pki
        except Exception:  # a cold cache is slower, never wrong: the worker still starts
            log.warning("seal caches left cold", exc_info=True)


def freeze_startup_heap() -> None:
    """Collect once, then exclude everything alive now from future collections."""
    gc.collect()
    gc.freeze()

"""Settings of a long-running serving process (gunicorn worker, Dramatiq worker).

`freeze_startup_heap` moves every object that exists once the app is built (modules, the
OpenAPI spec, mappers, compiled schemas: about 300,000 tracked objects) out of the cyclic
garbage collector's reach. A full collection walks every tracked object, and with that heap it
took ~170 ms with the GIL held, stalling every thread of the worker: the tail of the request
that happened to trigger it (usually the one allocating most, a sealed approval). Those objects
live as long as the process, so nothing is lost by never scanning them again.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then exclude everything alive now from future collections."""
    gc.collect()
    gc.freeze()

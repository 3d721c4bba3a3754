"""Serving a WSGI app over real HTTP on loopback, from a thread, for the length of a test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server


@contextmanager
def served(wsgi_app: Callable[..., Any], *, poll_interval: float = 0.5) -> Iterator[str]:
    """Serve `wsgi_app` (threaded, a free port) and yield its base URL; stop it afterwards.

    `poll_interval` is how long stopping may wait for the serving loop to notice: shorter for
    a test that starts and stops many servers."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""What the hand-written floors (`minimal_take.py`, `minimal_login.py`) share: their database
URL, their tables made afresh per run, and the same `Server-Timing: app;dur=` header the
product sends (`app.logs.ServerTiming`), so a bench reads both sides the same way. Kept apart
from the product on purpose: a floor imports nothing of `app`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psycopg


def libpq_url(env_var: str) -> str:
    """A libpq URL from `env_var`, else from the product's DATABASE_URL (SQLAlchemy form)."""
    url = os.environ.get(env_var) or os.environ.get("DATABASE_URL", "")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def make_tables(url: str, schema: str, tables: str) -> None:
    """Create a floor's tables and empty them: each bench run starts from none."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema)
        conn.execute(f"TRUNCATE {tables}")


class ServerTiming:
    """WSGI middleware: `Server-Timing: app;dur=<ms>`, plus whatever `extra()` adds."""

    def __init__(self, wsgi_app: Any, extra: Callable[[], str] | None = None) -> None:
        self.wsgi_app, self.extra = wsgi_app, extra

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()

        def timed(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            metrics = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
            more = self.extra() if self.extra else ""
            headers.append(("Server-Timing", f"{metrics}, {more}" if more else metrics))
            return start_response(status, headers, *args)

        return self.wsgi_app(environ, timed)

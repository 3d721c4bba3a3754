"""Flask extensions, created unbound here and bound in `create_app`."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def current_flask_app() -> Flask:
    """The app behind `current_app`, to hand to threads and builders that outlive the request."""
    # LocalProxy's stubs do not declare _get_current_object; it is Werkzeug's documented way.
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


# Limits are declared on the views that need them (login, code taking); storage is Redis when
# configured so every worker shares the counts, memory otherwise.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_limiter(app: Flask) -> None:
    redis_url = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    # With Redis unreachable the limits fall back to each process's memory: still enforced
    # (per worker), never a 500, and back on the shared counts when Redis returns. Failing
    # open would lift the limits exactly when something is already wrong.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)

"""Flask extensions, created unbound here and bound in `create_app`."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

log = logging.getLogger(__name__)


def current_flask_app() -> Flask:
    """The app behind `current_app`, to hand to threads and builders that outlive the request."""
    # LocalProxy's stubs do not declare _get_current_object; it is Werkzeug's documented way.
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


# Limits are declared on the views that need them (login, code taking); storage is Redis when
# configured so every worker shares the counts, memory otherwise. No X-RateLimit-* headers on
# every answer: reading the window for them was a second Redis call per limited request, and
# no client reads them; a refusal says when to come back (`_retry_after`).
# On a MethodView the limit goes on the class, `decorators = [limiter.limit(...)]` (Flask-Limiter's
# recipe for pluggable views), so it wraps the function Flask calls and is read once per request.
# Put on a method, it is out of sight of the limiter's before_request hook, which then reads it
# through an "endpoint hint" on every request, and the method's check reads it twice more.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


def init_limiter(app: Flask) -> None:
    redis_url = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    # With Redis unreachable the limits fall back to each process's memory: still enforced
    # (per worker), never a 500, and back on the shared counts when Redis returns. Failing
    # open would lift the limits exactly when something is already wrong.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    # A binding starts on its own storage. The Limiter is one object per process and keeps
    # "storage found dead" across `init_app` (it is set in its constructor only): bound again
    # (tests, `flask` commands building a second app) after a Redis outage, it would count in
    # the fallback memory until a health check, due by the clock, moved it back to the
    # primary storage mid-window, splitting a client's count in two.
    limiter._storage_dead = False
    limiter.init_app(app)
    _leave_limits_to_their_views(app)
    # Once per app: tests bind the shared limiter again to an app that has served requests.
    if _retry_after not in app.after_request_funcs.get(None, []):
        app.after_request(_retry_after)


def _leave_limits_to_their_views(app: Flask) -> None:
    """Take the limiter's before_request pass out: every limit here is its view's own.

    The pass is for limits that sit on no view (default, application and meta limits, and a
    blueprint's); a view's limit is checked by its decorator. With none of the former the pass
    only resolved each request's limits to find nothing to do: ~3 % of a take's CPU.
    """
    # After `init_app` the manager holds the default and application limits, the config's
    # included; meta limits come from the config alone here (none are passed to the Limiter).
    manager = limiter.limit_manager
    if manager.default_limits or manager.application_limits or app.config.get("RATELIMIT_META"):
        return
    hooks = app.before_request_funcs.get(None, [])
    # Flask-Limiter registers its bound method; equal, not identical, on each attribute access.
    app.before_request_funcs[None] = [
        hook for hook in hooks if hook != limiter._check_request_limit
    ]


def _retry_after(response: Response) -> Response:
    """A 429 from a limit says in Retry-After when the caller may try again."""
    if response.status_code != 429 or "Retry-After" in response.headers:
        return response
    limit = limiter.current_limit
    if limit is None:
        return response
    try:
        seconds = int(limit.reset_at - time.time())
    except Exception:  # the storage went away since the refusal: the limit's whole window
        log.warning("rate limit window unreadable for Retry-After", exc_info=True)
        seconds = limit.limit.get_expiry()
    response.headers["Retry-After"] = str(max(seconds, 1))
    return response

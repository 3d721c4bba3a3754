"""Each limited request reads its limit once and counts once (Flask-Limiter on class-based views).

A limit decorated on a MethodView's method is not on the function Flask calls (the view
`as_view` builds): Flask-Limiter then records an "endpoint hint" on the first request and, from
the second on, reads the limit in its `before_request` hook as well as in the decorator (which
reads it twice more, once as the method's limit and once as the hint). The limit belongs on the
class (`decorators = [...]`, Flask-Limiter's recipe for pluggable views): the hook sees the
view is limited, leaves it to the decorator, and the decorator reads the limit once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask_limiter._limits
import pytest
from flask import Flask
from flask_limiter.util import get_qualified_name

from app.extensions import init_limiter, limiter
from tests.core.test_rate_limits import _citizen_token, _limited_app


@dataclass
class LimitChecks:
    """What the limiter did: how often a declared limit was read, and the storage hits."""

    reads: int = 0
    hits: list[tuple[str, ...]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def _restore_the_shared_limiter(app: Flask) -> Iterator[None]:
    # Flask-Limiter's Limiter is one object per process; give it back to the session app.
    yield
    init_limiter(app)


def _count_limit_checks(monkeypatch: pytest.MonkeyPatch) -> LimitChecks:
    """Count the reads of declared limits and the storage hits of the limiter bound last."""
    checks = LimitChecks()
    # Every read of a declared limit (the view's own, a hint, a default) parses its rate string
    # here; the module's global is looked up at each read.
    parse_many = flask_limiter._limits.parse_many

    def counting_parse(text: str) -> Any:
        checks.reads += 1
        return parse_many(text)

    monkeypatch.setattr(flask_limiter._limits, "parse_many", counting_parse)
    # On the strategy's class, not the instance `limiter.limiter` names now: the limiter object
    # is shared by the suite's apps, and an earlier test that took its storage away leaves it on
    # its in-memory fallback until a backend check (on a backoff timer) switches it back, in the
    # middle of this test or not (CI: the hits went to the other instance, none were counted).
    strategy = type(limiter.limiter)
    hit = strategy.hit

    def counting_hit(self: Any, item: Any, *identifiers: str, cost: int = 1) -> bool:
        checks.hits.append(identifiers)
        return hit(self, item, *identifiers, cost=cost)

    monkeypatch.setattr(strategy, "hit", counting_hit)
    return checks


def _citizen_take(app: Flask) -> dict[str, Any]:
    token = _citizen_token(app, "o_counted")
    return {
        "json": {"code": "not-a-hall-code", "category_id": 1},
        "headers": {"Authorization": f"Bearer {token}"},
    }


# What each limited view is sent: its path, and the request's arguments for the test client.
# The console's login is a function view (its limit already wraps what Flask calls) and needs a
# CSRF token to reach the limit; the last test covers it with the rest.
LIMITED_REQUESTS: dict[str, tuple[str, Callable[[Flask], dict[str, Any]]]] = {
    "wechat login": ("/api/v1/auth/wechat/login", lambda app: {"json": {"code": "nope"}}),
    "refresh": ("/api/v1/auth/refresh", lambda app: {"json": {"refresh_token": "nope"}}),
    "staff login": (
        "/api/v1/staff/auth/login",
        lambda app: {"json": {"username": "nobody", "password": "x" * 12}},
    ),
    "citizen take": ("/api/v1/queue/tickets", _citizen_take),
}


@pytest.mark.parametrize("name", LIMITED_REQUESTS)
def test_a_limited_request_reads_its_limit_once_and_counts_once(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path, arguments = LIMITED_REQUESTS[name]
    app = _limited_app(tmp_path, emulator_url)  # 3 per minute for logins
    client = app.test_client()
    request = arguments(app)
    checks = _count_limit_checks(monkeypatch)

    statuses = [client.post(path, **request).status_code for _ in range(3)]

    assert 429 not in statuses and 500 not in statuses
    # Once per request (with the limit on the method: twice on the first request, then three
    # times on every later one, in the hook, as the method's limit and as the hint).
    assert checks.reads == 3
    # One hit per request, on the same counter as ever: the client's key and the endpoint.
    endpoint = app.url_map.bind("localhost").match(path, method="POST")[0]
    # (The identifiers are the client's key, the endpoint and, when the suite's earlier apps set
    # them, the limiter's own prefixes: compared whole, not by position.)
    assert len(checks.hits) == 3 and len(set(checks.hits)) == 1, checks.hits
    assert endpoint in checks.hits[0], checks.hits


def test_limits_sit_on_the_functions_flask_calls(app: Flask) -> None:
    # A limit on a MethodView's method is where the before_request hook cannot see it (the
    # double reads above); on the class (`decorators`) it wraps the view Flask registers.
    called = {get_qualified_name(view) for view in app.view_functions.values()}
    declared = set(limiter.limit_manager._decorated_limits)
    assert declared, "no limits declared: the check would pass for nothing"
    assert declared <= called, sorted(declared - called)


def test_the_limiter_resolves_limits_only_where_a_view_declares_one(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limiter's before_request pass resolved every request's limits (default, application,
    # meta and blueprint limits, of which there are none) before the view's decorator did the
    # same for the view's own: it is taken out, so an unlimited view resolves nothing and a
    # limited one resolves its limits once.
    app = _limited_app(tmp_path, emulator_url)
    client = app.test_client()
    resolved: list[bool] = []
    resolve = type(limiter.limit_manager).resolve_limits

    def counting_resolve(self: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(bool(kwargs.get("in_middleware", args[4] if len(args) > 4 else False)))
        return resolve(self, *args, **kwargs)

    monkeypatch.setattr(type(limiter.limit_manager), "resolve_limits", counting_resolve)

    assert client.get("/healthz").status_code == 200
    assert resolved == []
    assert client.post("/api/v1/auth/wechat/login", json={"code": "nope"}).status_code != 500
    assert resolved == [False]


def test_a_default_limit_keeps_the_limiters_own_pass(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pass is taken out only while nothing needs it: with a default limit configured (an
    # operator's RATELIMIT_DEFAULT) every request is checked against it again.
    # The Limiter is one object per process and keeps a configured default for every app it
    # binds to afterwards: the test's default goes when the test ends.
    monkeypatch.setattr(limiter.limit_manager, "_default_limits", [])
    app = _limited_app(tmp_path, emulator_url, RATELIMIT_DEFAULT="1000/minute")
    checks = _count_limit_checks(monkeypatch)

    assert app.test_client().get("/healthz").status_code == 200
    assert len(checks.hits) == 1, checks.hits


def test_no_limit_sits_outside_a_view(app: Flask) -> None:
    # What the taken-out pass would have checked must not exist (see the test above); the
    # app fixture has declared every view and its limits.
    manager = limiter.limit_manager
    assert not manager.default_limits and not manager.application_limits
    assert not manager._blueprint_limits
    assert not limiter._meta_limits

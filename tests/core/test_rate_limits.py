"""Login endpoints are rate limited per client, in memory or shared through Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from app import create_app
from app.extensions import init_limiter, limiter
from app.migrations_cli import upgrade_database
from tests.support.wechat_app import TEST_APPID, TEST_SECRET


def _redis_available() -> bool:
    try:
        return bool(redis.Redis(socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _limited_app(tmp_path: Path, emulator_url: str, **overrides: object):  # type: ignore[no-untyped-def]
    app = create_app(
        "testing",
        DATABASE_URL=f"sqlite:///{tmp_path / 'limits.db'}",
        WECHAT_API_BASE=emulator_url,
        WECHAT_APPID=TEST_APPID,
        WECHAT_SECRET=TEST_SECRET,
        WECHAT_TOKEN_CACHE="memory",
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3/minute",
        **overrides,
    )
    upgrade_database(app)
    return app


@pytest.fixture(autouse=True)
def _restore_the_shared_limiter(app: Flask) -> Iterator[None]:
    # Flask-Limiter's Limiter is one object per process; give it back to the session app.
    yield
    init_limiter(app)


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_fourth_login_attempt_in_a_minute_gets_json_429(
    tmp_path: Path, emulator_url: str, storage: str
) -> None:
    overrides: dict[str, object] = {}
    if storage == "redis":
        if not _redis_available():
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        # A fresh key prefix so earlier runs' counters do not count.
        overrides = {
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
            "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    client = _limited_app(tmp_path, emulator_url, **overrides).test_client()
    statuses = [
        client.post("/api/v1/auth/wechat/login", json={"code": "nope"}).status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 401]
    limited = client.post("/api/v1/auth/wechat/login", json={"code": "nope"})
    assert limited.status_code == 429
    assert limited.get_json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) > 0
    # Staff login has its own counter, and another client address is not affected.
    other = client.post(
        "/api/v1/auth/wechat/login", json={"code": "nope"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other.status_code == 401


def test_with_redis_unreachable_limits_still_hold_per_process_and_nothing_is_500(
    tmp_path: Path, emulator_url: str
) -> None:
    # Chosen: fall back to per-process memory rather than fail open (no limits while Redis
    # is away would invite the very bursts the limits stop) or refuse every login with 503.
    app = _limited_app(
        tmp_path,
        emulator_url,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",  # nothing listens there
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    )
    client = app.test_client()
    statuses = [
        client.post(
            "/api/v1/staff/auth/login", json={"username": "nobody", "password": "x" * 12}
        ).status_code
        for _ in range(4)
    ]
    assert 500 not in statuses
    assert statuses[-1] == 429


def _citizen_token(app: Flask, openid: str) -> str:
    """A signed-in citizen of `app` (its own database): a user and a login family."""
    from app.db import utcnow
    from app.identity.models import User
    from app.identity.principals import principal_for
    from app.identity.sessions import start_session
    from blueprints.authz import token_settings

    with app.app_context():
        session = app.extensions["db"].sessionmaker()
        user = User(openid=openid)
        session.add(user)
        session.flush()
        pair = start_session(
            session,
            principal_for(session, "user", user.id),
            settings=token_settings(),
            refresh_ttl_seconds=600,
            now=utcnow(),
        )
        session.commit()
        session.close()
        return pair.access_token


def _take(client, token: str, **environ: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        client.post(
            "/api/v1/queue/tickets",
            json={"code": "not-a-hall-code", "category_id": 1},
            headers={"Authorization": f"Bearer {token}"},
            environ_base=environ,
        ).status_code
    )


def test_take_ticket_limit_counts_each_citizen_not_their_shared_address(
    tmp_path: Path, emulator_url: str
) -> None:
    # A hall's visitors share the hall's Wi-Fi or a carrier's NAT, and behind the balancer every
    # request came from its address: one citizen's quota was the whole district's.
    app = _limited_app(tmp_path, emulator_url, RATELIMIT_TAKE_TICKET="2/minute")
    client = app.test_client()
    first, second = _citizen_token(app, "o_first"), _citizen_token(app, "o_second")
    assert [_take(client, first) for _ in range(2)] != [429, 429]
    assert _take(client, first) == 429
    assert _take(client, second) != 429


def _login_from(client, forwarded_for: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        client.post(
            "/api/v1/auth/wechat/login",
            json={"code": "nope"},
            headers={"X-Forwarded-For": forwarded_for},
        ).status_code
    )


# One app per test: Flask-Limiter's limiter is one object per process, and binding it to a
# second app within a test made the first half's state and the second's hard to tell apart.
def test_behind_the_balancer_the_client_address_is_the_forwarded_one(
    tmp_path: Path, emulator_url: str
) -> None:
    behind = _limited_app(tmp_path, emulator_url, PROXY_COUNT=1).test_client()
    assert [_login_from(behind, "203.0.113.7") for _ in range(3)] == [401, 401, 401]
    assert _login_from(behind, "203.0.113.7") == 429
    assert _login_from(behind, "203.0.113.8") == 401  # another citizen behind the balancer


def test_without_a_proxy_a_forwarded_address_is_ignored(tmp_path: Path, emulator_url: str) -> None:
    # With no proxy configured the header is the client's own claim: ignored, so a client
    # cannot dodge its limit by inventing addresses.
    direct = _limited_app(tmp_path, emulator_url).test_client()
    assert [_login_from(direct, f"198.51.100.{n}") for n in range(3)] == [401, 401, 401]
    assert _login_from(direct, "198.51.100.99") == 429


def test_a_limiter_bound_again_counts_on_its_own_storage_from_the_first_request(
    tmp_path: Path, emulator_url: str
) -> None:
    """The limiter is one object per process. After an app whose Redis was unreachable (the
    test above), it kept `_storage_dead` through the next binding: the next app's attempts
    were counted in the fallback memory until a health check, due by the clock, moved the
    count back to the primary storage, and the fourth attempt of a client passed (CI, once)."""
    # As an earlier binding whose storage went away leaves it, its last health check recent.
    limiter._storage_dead = True
    limiter._Limiter__last_check_backend = time.time()  # type: ignore[attr-defined]
    client = _limited_app(tmp_path, emulator_url).test_client()
    assert [_login_from(client, "192.0.2.1") for _ in range(3)] == [401, 401, 401]
    limiter._Limiter__last_check_backend = 0.0  # type: ignore[attr-defined]  # a check is due
    assert _login_from(client, "192.0.2.1") == 429

"""Apps of their own for the runner tests: committed rows on a file database, real threads."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from app import create_app
from app.db import get_session, utcnow
from app.identity.models import User
from app.notify import outbox
from app.notify.models import NotificationOutbox
from tests.factories.notify import (
    QUEUE_CALLED_DATA,
    emulator_grant,
    emulator_login,
    emulator_messages,
    unique_openid,
)
from tests.support.database import build_schema

# The Redis database the job tests use (flushed by nothing else on this machine).
REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_answers(), reason="no Redis at 127.0.0.1:6379")


def build_app(reference: Flask, tmp_path: Path, **overrides: Any) -> Flask:
    """A second app like the test app, on its own SQLite file, with the given runner."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
        "WECHAT_API_BASE": reference.config["WECHAT_API_BASE"],
        "WECHAT_APPID": reference.config["WECHAT_APPID"],
        "WECHAT_SECRET": reference.config["WECHAT_SECRET"],
        "WECHAT_TOKEN_CACHE": "memory",
        "RATELIMIT_ENABLED": False,
    }
    settings.update(overrides)
    application = create_app("testing", **settings)
    build_schema(application)
    return application


def granted_user(app: Flask, emulator_url: str) -> User:
    """Commit a user whom WeChat knows and who allowed one queue_called message."""
    with app.app_context():
        session = get_session()
        user = User(openid=unique_openid("o_jobs"))
        session.add(user)
        session.flush()
        emulator_login(emulator_url, user.openid)
        emulator_grant(emulator_url, user.openid, "queue_called")
        outbox.record_subscription_result(session, user.id, {"queue_called": "accept"}, utcnow())
        session.commit()
        return user


def commit_notification(app: Flask, user: User, *, due_in: float = 0.0) -> int:
    """Enqueue one notification and commit, as a view would; returns the row id."""
    with app.app_context():
        session = get_session()
        now = utcnow()
        row_id = outbox.enqueue(
            session,
            user_id=user.id,
            template_key="queue_called",
            data=dict(QUEUE_CALLED_DATA),
            dedupe_key=f"jobs:{user.openid}:{now.timestamp()}",
            now=now + dt.timedelta(seconds=due_in),
        )
        assert row_id is not None
        session.commit()
        return row_id


def row_status(app: Flask, row_id: int) -> str:
    with app.app_context():
        row = get_session().get(NotificationOutbox, row_id)
        assert row is not None
        return str(row.status)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def messages_for(emulator_url: str, user: User) -> list[dict[str, Any]]:
    return emulator_messages(emulator_url, user.openid)

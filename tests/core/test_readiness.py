"""GET /readyz answers 200 only while the database and Redis (when configured) both answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.db import make_engine
from tests.support.jobs import REDIS_URL, build_app, needs_redis


@needs_redis
def test_ready_when_the_database_and_redis_answer(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_URL)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_not_ready_while_the_database_does_not_answer(app: Flask, tmp_path: Path) -> None:
    built = build_app(app, tmp_path)
    # Nothing listens on port 1: every connection is refused at once.
    built.extensions["db"].engine.dispose()
    built.extensions["db"].engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")

    response = built.test_client().get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "NOT_READY" and body["message"]
    assert body["details"]["checks"]["database"] == "unavailable"

"""`make run`'s own WeChat calls on SQLite with the database token cache (issue 11.1).

There, binding a phone by code answered 500 after 30 s: the request's transaction holds
SQLite's write lock from its first statement (BEGIN IMMEDIATE), and the token cache, in the
same database file, waited on it for its own. Reproduced here in make run's configuration:
an SQLite file, no Redis, the token cache chosen by default, the emulator over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from app import create_app
from app.db import get_session
from app.identity.models import User
from app.integrations.wechat import get_wechat
from app.migrations_cli import upgrade_database
from tests.support.wechat_app import TEST_APPID, TEST_SECRET


@pytest.fixture
def make_run_app(tmp_path: Path, emulator_url: str) -> Iterator[Flask]:
    application = create_app(
        "testing",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        WECHAT_API_BASE=emulator_url,
        WECHAT_APPID=TEST_APPID,
        WECHAT_SECRET=TEST_SECRET,
        WECHAT_TOKEN_CACHE="",  # as make run: the default for no Redis
        REDIS_URL="",
        RATELIMIT_ENABLED=False,
        JOB_RUNNER="manual",
    )
    upgrade_database(application)
    yield application
    application.extensions["db"].engine.dispose()


def test_a_token_is_fetched_while_the_request_holds_the_write_lock(make_run_app: Flask) -> None:
    with make_run_app.app_context():
        session = get_session()
        session.add(User(openid="o_lock_holder"))
        session.flush()  # the request's transaction now holds SQLite's write lock
        started = time.monotonic()
        token = get_wechat().access_token()
        assert token and time.monotonic() - started < 5
        session.rollback()


def test_binding_a_phone_by_code_works_on_make_runs_configuration(
    make_run_app: Flask, emulator_url: str
) -> None:
    client = make_run_app.test_client()
    login_code = requests.post(
        f"{emulator_url}/_emulator/login", json={"openid": "o_make_run"}, timeout=5
    ).json()["code"]
    login = client.post("/api/v1/auth/wechat/login", json={"code": login_code})
    assert login.status_code == 200, login.get_json()
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    phone_code = requests.post(
        f"{emulator_url}/_emulator/phone-code", json={"phone": "13800138000"}, timeout=5
    ).json()["code"]

    started = time.monotonic()
    bound = client.post("/api/v1/me/phone", json={"code": phone_code}, headers=headers)

    assert bound.status_code == 200, bound.get_json()
    assert time.monotonic() - started < 5

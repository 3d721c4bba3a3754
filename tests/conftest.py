"""Shared fixtures: one app per session, every test inside a rolled-back transaction.

The backend is SQLite unless DATABASE_URL is set (CI runs the suite once each way).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app import create_app
from app.db import get_session
from tests.support import database as test_database
from tests.support.wechat_app import TEST_APPID, TEST_SECRET
from wechat.emulator import Emulator, serve_in_thread

pytest_plugins = [
    "tests.factories.identity",
    "tests.factories.enterprises",
    "tests.factories.staff",
    "tests.factories.notify",
    "tests.factories.seals",
    "tests.factories.policies",
    "tests.factories.queueing",
    "tests.factories.appointments",
]


@pytest.fixture(scope="session", autouse=True)
def files_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every app the tests build keeps its files (PKI, signed documents, audit checkpoints,
    materials) in this session's temp directory, never in the checkout's var/. The font subset
    stays in the user's cache (config: SEAL_FONT_CACHE_DIR): derived data, the same for every
    session."""
    base = tmp_path_factory.mktemp("files")
    paths = {
        "SEAL_PKI_DIR": base / "seals" / "pki",
        "SEAL_STORAGE_DIR": base / "seals" / "documents",
        "AUDIT_CHECKPOINT_DIR": base / "audit-checkpoints",
        "MATERIALS_STORAGE_DIR": base / "materials",
    }
    saved = {name: os.environ.get(name) for name in paths}
    os.environ.update({name: str(path) for name, path in paths.items()})
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """The WeChat emulator on loopback; the app's client talks to it over real HTTP."""
    instance = Emulator(apps={TEST_APPID: TEST_SECRET})
    server, base_url = serve_in_thread("127.0.0.1", 0, emulator=instance)
    instance.base_url = base_url  # type: ignore[attr-defined]
    yield instance
    server.shutdown()


@pytest.fixture(scope="session")
def emulator_url(emulator: Emulator) -> str:
    return emulator.base_url  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session")
def app(database_url: str, emulator_url: str, files_outside_the_checkout: None) -> Iterator[Flask]:
    os.environ.setdefault("APP_ENV", "testing")
    application = create_app(
        "testing",
        DATABASE_URL=database_url,
        WECHAT_API_BASE=emulator_url,
        WECHAT_APPID=TEST_APPID,
        WECHAT_SECRET=TEST_SECRET,
        WECHAT_TOKEN_CACHE="memory",
        RATELIMIT_ENABLED=False,
        JOB_RUNNER="manual",
        # 64 bytes: long enough for every HMAC the tests sign with it, HS512 included.
        SECRET_KEY="test-secret-key-" + "0123456789abcdef" * 3,
    )
    test_database.build_schema(application)
    yield application


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    with test_database.outer_transaction(app), app.app_context():
        yield get_session()


@pytest.fixture
def client(app: Flask, session: Session) -> FlaskClient:
    """A test client whose requests share the test's transaction."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()

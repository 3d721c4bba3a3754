"""The staff console in a real browser: Debian's chromium driven by Playwright, against a live
server the tests start on its own database, set up as `make run` sets it up (organisation,
matters, demo seed).

The live server's data is committed (a browser cannot share a test's transaction): each test
makes its own citizens, tickets and applications, so tests do not depend on each other.
Screenshots of every page go to $CONSOLE_SCREENSHOT_DIR (default var/console-screenshots);
every page is checked with the vendored axe-core for serious or critical violations.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from app.db import get_session, utcnow
from app.identity.models import User
from app.identity.realname import verify_real_name
from app.migrations_cli import upgrade_database
from app.security import get_cipher
from config import PROJECT_ROOT
from tests.factories.identity import _ServiceVerifier, id_number_for
from tests.support.http import served
from tests.support.wechat_app import TEST_APPID, TEST_SECRET

CHROMIUM = "/usr/bin/chromium"
VENDOR = Path(__file__).parent / "vendor"
AXE = VENDOR / "axe-core-4.14.1.min.js"
DEMO_PASSWORD = "Panyu-Demo-2026!"
SCREENSHOTS = Path(
    os.environ.get("CONSOLE_SCREENSHOT_DIR", PROJECT_ROOT / "var" / "console-screenshots")
)

_serial = itertools.count(1)


def _console_database(database_url: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A database of the console tests' own: a new PostgreSQL database beside the suite's,
    or an SQLite file."""
    if not database_url.startswith("postgresql"):
        return f"sqlite:///{tmp_path / 'console.db'}", lambda: None
    parts = urlsplit(database_url)
    # The process id keeps two runs on one server (two checkouts, say) out of each other's way.
    name = f"{parts.path.lstrip('/')}_console_{os.getpid()}"
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))

    def run(statement: str) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(statement)

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), lambda: run(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


class LiveConsole:
    """The running server, its app (for set-up in the database) and an API client."""

    def __init__(self, app: Flask, base_url: str, emulator_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self.emulator_url = emulator_url
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.base_url + path

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(
            method, f"{self.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def citizen(self, *, level: str = "face", name: str = "李四") -> tuple[User, str]:
        """A mini-program user, logged in through WeChat (the emulator) as the phone does,
        who then passed real-name verification (and the face, by default); with a token."""
        openid = f"o_console_{os.getpid()}_{next(_serial):05d}"
        code = self.http.post(
            f"{self.emulator_url}/_emulator/login", json={"openid": openid}, timeout=10
        ).json()["code"]
        login = self.api("POST", "/auth/wechat/login", json={"code": code})
        assert login.status_code == 200, login.text
        with self.app.app_context():
            session: Session = get_session()
            user = session.scalars(select(User).where(User.openid == openid)).one()
            now = utcnow()
            number = id_number_for(order=next(_serial) % 1000)
            verify_real_name(
                session,
                get_cipher(),
                _ServiceVerifier(),
                user,
                name=name,
                id_number=number,
                now=now,
            )
            if level == "face":
                user.face_verified_at = now
            session.commit()
            session.refresh(user)
            session.expunge(user)
        return user, str(login.json()["access_token"])


# Package scope: Playwright's sync API runs an event loop in this thread while the browser is
# up; it must stop before the rest of the suite (pyHanko's asyncio.run cannot nest in it).
@pytest.fixture(scope="package")
def live_console(
    database_url: str,
    emulator_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    files_outside_the_checkout: None,
) -> Iterator[LiveConsole]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt as root)")
    base = tmp_path_factory.mktemp("console")
    url, drop = _console_database(database_url, base)
    app = create_app(
        "testing",
        DATABASE_URL=url,
        WECHAT_API_BASE=emulator_url,
        WECHAT_APPID=TEST_APPID,
        WECHAT_SECRET=TEST_SECRET,
        WECHAT_TOKEN_CACHE="memory",
        # The pushes a published policy sends drain at once whatever the hour the tests run.
        POLICY_PUSH_QUIET_HOURS="00:00-00:00",
        IDENTITY_SERVICE_BASE="checksum",
        CITY_CODE_SERVICE_BASE="disabled",
        REDIS_URL="",
        RATELIMIT_ENABLED=False,
        JOB_RUNNER="inprocess",
        QUEUE_SSE_KEEPALIVE_SECONDS=15,
        SECRET_KEY="console-test-secret-" + "0123456789abcdef" * 3,
        # Its own keys and files: the suite's app keeps its seals in the session's folders.
        SEAL_PKI_DIR=str(base / "seals" / "pki"),
        SEAL_STORAGE_DIR=str(base / "seals" / "documents"),
        AUDIT_CHECKPOINT_DIR=str(base / "audit-checkpoints"),
        MATERIALS_STORAGE_DIR=str(base / "materials"),
    )
    upgrade_database(app)
    runner = app.test_cli_runner()
    import app.demo as demo_module

    previous_root = demo_module.PROJECT_ROOT
    demo_module.PROJECT_ROOT = base  # printable codes stay in the temp dir
    try:
        for args in (["organisation", "load"], ["matters", "load"], ["demo", "seed"]):
            result = runner.invoke(args=args)
            assert result.exit_code == 0, (args, result.output, result.exception)
    finally:
        demo_module.PROJECT_ROOT = previous_root
    with served(app) as base_url:
        yield LiveConsole(app, base_url, emulator_url)
    # The job threads (outbox and sweeps; policy pushes) stop before their database goes.
    for name in ("jobs", "policy_push_runner"):
        runner = app.extensions.get(name)
        if hasattr(runner, "stop"):
            runner.stop()
    app.extensions["db"].engine.dispose()
    drop()


@pytest.fixture(scope="package")
def browser(live_console: LiveConsole) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"]
        )
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh browser context (its own cookies): `new_page(width=1280,
    height=800)`."""
    contexts = []

    def open_page(width: int = 1280, height: int = 800) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale="zh-CN", bypass_csp=True
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def login(page: Any, live: LiveConsole, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the console's password form."""
    page.goto(live.url("/console/login"))
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/console/**")
    assert "/console/login" not in page.url, page.content()


def look_at(page: Any, name: str) -> Path:
    """Save a full-page screenshot (for people to look at), and check the page with axe-core:
    no serious or critical accessibility violation."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
    )
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    overflowing = page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1"
        " && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0"
        " && !e.closest('.table-wrap') && !e.closest('svg'))"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert overflowing == [], overflowing
    return path


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None

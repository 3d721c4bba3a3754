"""Issue 14, security: every response carries the security headers, API and pages alike; the
console's and Swagger UI's pages keep a CSP that lets them work; HSTS in production only."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.identity.models import User
from app.seals.context import SealContext
from app.seals.models import IssuedDocument, Seal
from blueprints.headers import API_CSP
from config import ProductionConfig
from tests.support.http import served

EVERYWHERE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _assert_common(response: TestResponse) -> None:
    for name, value in EVERYWHERE.items():
        assert response.headers.get(name) == value, name
    assert "camera=(self)" in response.headers["Permissions-Policy"]
    assert "microphone=()" in response.headers["Permissions-Policy"]
    # The test app is not production: no HSTS over what may be plain HTTP.
    assert "Strict-Transport-Security" not in response.headers


def _csp(response: TestResponse) -> dict[str, str]:
    return {
        directive.split(" ", 1)[0]: directive.partition(" ")[2]
        for directive in (
            part.strip() for part in response.headers["Content-Security-Policy"].split(";")
        )
        if directive
    }


def test_an_api_json_response_carries_the_headers_and_is_not_stored(
    client: FlaskClient,
    create_user: Callable[..., User],
    citizen_headers: Callable[..., dict[str, str]],
) -> None:
    response = client.get("/api/v1/me", headers=citizen_headers(create_user()))

    assert response.status_code == 200 and response.is_json
    _assert_common(response)
    assert response.headers["Content-Security-Policy"] == API_CSP
    assert response.headers["Cache-Control"] == "no-store"


def test_an_error_response_carries_the_headers(client: FlaskClient) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 401 and response.json["code"] == "TOKEN_INVALID"
    _assert_common(response)
    assert response.headers["Content-Security-Policy"] == API_CSP
    assert response.headers["Cache-Control"] == "no-store"


def test_a_route_that_does_not_exist_gets_them_too(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    _assert_common(response)
    assert response.headers["Content-Security-Policy"] == API_CSP


def test_a_console_page_keeps_its_own_page_csp(client: FlaskClient) -> None:
    response = client.get("/console/login")

    assert response.status_code == 200 and response.mimetype == "text/html"
    _assert_common(response)
    csp = _csp(response)
    # The console's page CSP (rendering.page_headers), not the API's: its own scripts and
    # styles run, nothing else, and nothing frames it.
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_docs_page_allows_swagger_ui_and_its_one_inline_script_only(
    client: FlaskClient,
) -> None:
    response = client.get("/api/docs")

    assert response.status_code == 200 and response.mimetype == "text/html"
    _assert_common(response)
    csp = _csp(response)
    inline = re.findall(r"<script>(.*?)</script>", response.get_data(as_text=True), re.DOTALL)
    assert len(inline) == 1  # the page's start-up script; its hash is what lets it run
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe-inline" not in csp["script-src"] and "unsafe-eval" not in csp["script-src"]
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    # The files it loads are served here and are public (cached), unlike any API answer.
    asset = client.get("/api/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert "no-store" not in asset.headers["Cache-Control"]
    assert client.get("/api/openapi.json").headers["Cache-Control"] == "no-store"


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (make test installs it with apt as root)",
)
def test_swagger_ui_renders_every_operation_under_its_csp_in_a_browser(app: Flask) -> None:
    from playwright.sync_api import sync_playwright

    violations: list[str] = []
    # Started and stopped here: Playwright's event loop must not outlive this test.
    with served(app) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on(
            "console",
            lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text
            else None,
        )
        page.goto(f"{base_url}/api/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        operations = page.locator(".opblock").count()
        browser.close()

    assert violations == []
    assert operations > 100  # the whole document rendered, not a blank page


@pytest.fixture
def verification_code(
    create_seal_for: Callable[..., Seal],
    issue_certificate: Callable[..., IssuedDocument],
    seal_context: SealContext,
) -> str:
    document = issue_certificate(create_seal_for())
    return seal_context.codes.code_for(document.public_id)


def test_the_public_verification_page_carries_the_page_headers(
    client: FlaskClient, verification_code: str
) -> None:
    response = client.get(f"/s/{verification_code}")

    assert response.status_code == 200 and 'data-status="valid"' in response.get_data(as_text=True)
    _assert_common(response)
    assert _csp(response)["script-src"] == "'self'"
    # It names the holder (masked): no cache keeps it.
    assert response.headers["Cache-Control"] == "no-store"


def test_a_public_file_is_cached_unless_asked_for_with_credentials(client: FlaskClient) -> None:
    anonymous = client.get("/api/docs-assets/swagger-ui.css")
    signed_in = client.get("/api/docs-assets/swagger-ui.css", headers={"Authorization": "Bearer x"})

    assert "max-age=86400" in anonymous.headers["Cache-Control"]
    assert signed_in.headers["Cache-Control"] == "no-store"


@pytest.fixture
def production_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The test app with production's HSTS and cookie settings (the rest of production needs
    real outside services)."""
    monkeypatch.delenv("HSTS_MAX_AGE_SECONDS", raising=False)
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    production = ProductionConfig()  # defaults only: not validated, never started
    names = ("HSTS_MAX_AGE_SECONDS", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY")
    before = {name: app.config[name] for name in (*names, "SESSION_COOKIE_SAMESITE")}
    app.config.update({name: getattr(production, name) for name in before})
    yield app
    app.config.update(before)


def test_production_sends_hsts_on_api_and_pages(production_app: Flask, client: FlaskClient) -> None:
    for path in ("/api/v1/no-such-thing", "/console/login", "/api/docs", "/s/AAAAAAAAAA-AAAAAAAAA"):
        response = client.get(path)
        assert response.headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains"
        ), path


def test_production_cookies_are_secure_httponly_and_samesite(
    production_app: Flask, client: FlaskClient
) -> None:
    response = client.get("/console/login")  # the login form's CSRF token lives in the session

    cookies = response.headers.getlist("Set-Cookie")
    assert cookies, "the login page sets the console session cookie"
    for cookie in cookies:
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"secure", "httponly", "samesite"} <= flags, cookie
        assert "SameSite=Lax" in cookie

"""Every console page, asked for with ids that do not exist or with junk, answers a page (404,
403, 422...) and never a 500; a POST without its CSRF token is refused before anything runs."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories.staff import STAFF_PASSWORD


def _console_rules(app: Flask, method: str) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        and rule.endpoint != "console.static"
        and method in (rule.methods or set())
    )


def _fill(rule: str, value: str) -> str:
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "999999" if m.group(1) == "int" else value, rule)


@pytest.fixture
def admin_client(client: FlaskClient, create_staff) -> FlaskClient:  # type: ignore[no-untyped-def]
    create_staff(username="crawl.admin")
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    answer = client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "username": "crawl.admin", "password": STAFF_PASSWORD},
    )
    assert answer.status_code == 302
    return client


def test_no_console_page_answers_500_to_unknown_ids_or_junk(
    app: Flask, admin_client: FlaskClient
) -> None:
    rules = _console_rules(app, "GET")
    assert len(rules) > 20
    for rule in rules:
        for junk in ("x", "%E4%B8%AD'\"<>"):
            for query in ("", "?day=not-a-date&department_id=abc&mine=2&all=1&token="):
                url = _fill(rule, junk) + query
                answer = admin_client.get(url)
                assert answer.status_code < 500, (url, answer.status_code)


def test_every_console_post_needs_its_csrf_token(app: Flask, admin_client: FlaskClient) -> None:
    rules = _console_rules(app, "POST")
    assert len(rules) > 15
    for rule in rules:
        answer = admin_client.post(_fill(rule, "x"), data={"anything": "1"})
        assert answer.status_code == 400, (rule, answer.status_code)
        assert "页面已过期" in answer.get_data(as_text=True)

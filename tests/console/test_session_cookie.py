"""The console's session cookie, without a browser: HttpOnly and SameSite on the login answer;
a login ends with logout like an API login family; the login page's form needs its CSRF token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import select

from app.identity.models import LoginFamily
from tests.factories.staff import STAFF_PASSWORD


def _csrf(client: FlaskClient) -> str:
    page = client.get("/console/login").get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_login_sets_an_httponly_samesite_cookie_bound_to_a_login_family(
    client: FlaskClient, session, create_staff
) -> None:  # type: ignore[no-untyped-def]
    account = create_staff(username="cookie.clerk")
    answer = client.post(
        "/console/login",
        data={"csrf_token": _csrf(client), "username": "cookie.clerk", "password": STAFF_PASSWORD},
    )
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("yhb_console=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    family = session.scalars(
        select(LoginFamily).where(LoginFamily.principal_id == account.id)
    ).one()
    assert family.revoked_at is None
    assert client.get("/console/account").status_code == 200

    logout = client.post("/console/logout", data={"csrf_token": _csrf_logged_in(client)})
    assert logout.status_code == 302
    session.refresh(family)
    assert family.revoked_at is not None
    assert client.get("/console/account").status_code == 302


def _csrf_logged_in(client: FlaskClient) -> str:
    page = client.get("/console/account").get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


def test_a_login_form_without_its_token_is_refused(client: FlaskClient, create_staff) -> None:  # type: ignore[no-untyped-def]
    create_staff(username="cookie.nocsrf")
    answer = client.post(
        "/console/login", data={"username": "cookie.nocsrf", "password": STAFF_PASSWORD}
    )
    assert answer.status_code == 400
    assert (
        "Set-Cookie" not in answer.headers
        or "yhb_console" not in answer.headers.get("Set-Cookie", "")
        or client.get("/console/account").status_code == 302
    )

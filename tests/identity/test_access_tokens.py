"""Access tokens: only our own unexpired HS256 tokens, for our issuer and audience, get in."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.db import utcnow
from app.identity.access_tokens import DEFAULT_KID, Principal, issue_access_token
from app.identity.models import StaffAccount, User
from app.identity.sessions import TokenPair
from tests.factories.identity import app_token_settings

ME = "/api/v1/me"


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


@pytest.fixture
def login(
    create_user: Callable[..., User], start_login: Callable[..., TokenPair]
) -> tuple[User, TokenPair]:
    user = create_user()
    return user, start_login("user", user.id)


@pytest.fixture
def claims(app: Flask, login: tuple[User, TokenPair]) -> dict[str, Any]:
    """The claims of a valid token, to re-sign in the ways an attacker would."""
    _, pair = login
    return jwt.decode(
        pair.access_token,
        app.config["SECRET_KEY"],
        algorithms=["HS256"],
        audience=app.config["JWT_AUDIENCE"],
    )


def _me(client: FlaskClient, token: str) -> Any:
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_gets_in(client: FlaskClient, login: tuple[User, TokenPair]) -> None:
    user, pair = login

    response = _me(client, pair.access_token)

    assert response.status_code == 200
    assert response.json["id"] == user.id


def test_an_expired_token_is_refused(
    app: Flask, client: FlaskClient, login: tuple[User, TokenPair]
) -> None:
    user, pair = login
    settings = app_token_settings(app)
    principal = Principal("user", user.id, ("citizen",), family_id=pair.family_id)
    token, _ = issue_access_token(settings, principal, now=utcnow() - dt.timedelta(hours=1))

    response = _me(client, token)

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    ("change", "secret_override"),
    [
        ({"aud": "another-api"}, None),
        ({"iss": "someone-else"}, None),
        ({}, "a-secret-that-is-not-ours-but-long-enough"),
        ({"sub": "admin:1"}, None),
    ],
    ids=["wrong-audience", "wrong-issuer", "forged-signature", "unknown-subject-kind"],
)
def test_a_token_not_minted_for_us_is_refused(
    app: Flask,
    client: FlaskClient,
    claims: dict[str, Any],
    change: dict[str, str],
    secret_override: str | None,
) -> None:
    token = jwt.encode(
        {**claims, **change},
        secret_override or app.config["SECRET_KEY"],
        algorithm="HS256",
        headers={"kid": DEFAULT_KID},  # our key's id: only the change is wrong with it
    )

    response = _me(client, token)

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_INVALID"


def test_an_unsigned_alg_none_token_is_refused(client: FlaskClient, claims: dict[str, Any]) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."

    response = _me(client, token)

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_INVALID"


@pytest.mark.parametrize("ours", [True, False], ids=["our-key", "another-key"])
def test_a_token_signed_with_another_algorithm_is_refused(
    app: Flask, client: FlaskClient, claims: dict[str, Any], ours: bool
) -> None:
    key = app.config["SECRET_KEY"] if ours else "another-key-of-sixty-four-bytes-" * 2
    token = jwt.encode(claims, key, algorithm="HS512", headers={"kid": DEFAULT_KID})

    response = _me(client, token)

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_INVALID"


def _with_header(app: Flask, claims: dict[str, Any], header_segment: str) -> str:
    """A token with our signature over `header_segment` and the claims: only its header is odd."""
    signing_input = f"{header_segment}.{_b64(claims)}"
    mac = hmac.new(app.config["SECRET_KEY"].encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "header_segment",
    [
        "",
        "!!!!",
        base64.urlsafe_b64encode(b"not json").rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b'["HS256", "s0"]').rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe{}").rstrip(b"=").decode(),
        "e" * 2000,
    ],
    ids=["empty", "not-base64url", "not-json", "json-list", "not-utf8", "huge"],
)
def test_a_token_whose_header_cannot_be_read_is_refused_as_invalid(
    app: Flask, client: FlaskClient, claims: dict[str, Any], header_segment: str
) -> None:
    # The key is chosen by the header's kid before anything is verified: an unreadable header
    # chooses none (401 TOKEN_INVALID), never a 500.
    response = _me(client, _with_header(app, claims, header_segment))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_INVALID"


def test_a_header_written_with_base64_padding_still_names_its_key(
    app: Flask, client: FlaskClient, claims: dict[str, Any]
) -> None:
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": DEFAULT_KID}).encode()
    ).decode()
    assert header.endswith("=")  # padded, as some issuers write it and PyJWT accepts

    assert _me(client, _with_header(app, claims, header)).status_code == 200


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer not.a.jwt"]
)
def test_a_missing_or_malformed_authorization_header_is_refused(
    client: FlaskClient, header: str
) -> None:
    response = client.get(ME, headers={"Authorization": header} if header else {})

    assert response.status_code == 401
    assert response.json["code"] in {"UNAUTHENTICATED", "TOKEN_INVALID"}


def test_a_staff_token_cannot_use_citizen_endpoints(
    client: FlaskClient,
    create_staff: Callable[..., StaffAccount],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
) -> None:
    response = client.get(ME, headers=staff_headers(create_staff()))

    assert response.status_code == 403


def test_a_citizen_token_only_ever_shows_its_own_profile(
    client: FlaskClient,
    create_verified_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    alice = create_verified_user(name="李小红")
    bob = create_verified_user(name="王大明")

    as_alice = client.get(ME, headers=citizen_headers(alice)).json
    as_bob = client.get(ME, headers=citizen_headers(bob)).json

    assert as_alice["id"] == alice.id and as_alice["realname"]["name"] == "*小红"
    assert as_bob["id"] == bob.id and as_bob["realname"]["name"] == "*大明"
    assert as_alice["realname"]["id_number"] != as_bob["realname"]["id_number"]


@pytest.mark.parametrize(
    "scopes",
    [{"window_clerk": "abc"}, {"window_clerk": 5}, {"window_clerk": ["x"]}, ["a"], "all"],
)
def test_a_token_with_malformed_scopes_is_401_not_500(
    app: Flask, client: FlaskClient, claims: dict[str, Any], scopes: Any
) -> None:
    token = jwt.encode(
        {**claims, "scopes": scopes},
        app.config["SECRET_KEY"],
        algorithm="HS256",
        headers={"kid": DEFAULT_KID},
    )

    response = _me(client, token)

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_INVALID"

"""The refresh grace: the just-rotated token, presented again within a few seconds, gets the
same successor; anything else that presents a spent token ends the login (issue 10 §5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db import utcnow
from app.identity import sessions
from app.identity.access_tokens import DEFAULT_KID
from app.identity.errors import RefreshTokenReused
from app.identity.models import LoginFamily, RefreshToken, User
from app.identity.sessions import TokenPair
from tests.factories.identity import app_token_settings

REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/me"
GRACE = 10
T0 = dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC)


@pytest.fixture
def login(
    create_user: Callable[..., User], start_login: Callable[..., TokenPair]
) -> tuple[User, TokenPair]:
    user = create_user()
    return user, start_login("user", user.id)


@pytest.fixture
def refresh(app: Flask, session: Session) -> Callable[..., TokenPair]:
    """Refresh `token` at `seconds` after T0, with a 10 s grace."""

    def run(token: str, seconds: float) -> TokenPair:
        return sessions.refresh_session(
            session,
            token,
            settings=app_token_settings(app),
            refresh_ttl_seconds=3600,
            reuse_grace_seconds=GRACE,
            now=T0 + dt.timedelta(seconds=seconds),
        )

    return run


def _family(session: Session, family_id: str) -> LoginFamily:
    return session.scalars(
        select(LoginFamily)
        .where(LoginFamily.id == family_id)
        .execution_options(populate_existing=True)
    ).one()


def _reuse_audits(session: Session) -> list[dict[str, Any]]:
    return [
        entry.details
        for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "session.refresh_reuse_detected")
        )
    ]


def test_the_just_rotated_token_within_the_grace_gets_the_same_successor(
    session: Session, login: tuple[User, TokenPair], refresh: Callable[..., TokenPair]
) -> None:
    _, first = login
    second = refresh(first.refresh_token, 0)

    again = refresh(first.refresh_token, GRACE - 1)

    assert again.refresh_token == second.refresh_token
    assert again.refresh_expires_at == second.refresh_expires_at
    assert again.family_id == first.family_id
    assert _family(session, first.family_id).revoked_at is None
    # No third token was made: the successor is still the family's one live token.
    assert len(session.scalars(select(RefreshToken)).all()) == 2
    assert refresh(again.refresh_token, GRACE).refresh_token != again.refresh_token


def test_the_just_rotated_token_after_the_grace_ends_the_login(
    session: Session, login: tuple[User, TokenPair], refresh: Callable[..., TokenPair]
) -> None:
    _, first = login
    refresh(first.refresh_token, 0)

    with pytest.raises(RefreshTokenReused):
        refresh(first.refresh_token, GRACE + 1)

    assert _family(session, first.family_id).revoked_reason == "reuse_detected"
    assert [d["reason"] for d in _reuse_audits(session)] == ["after_grace"]


def test_the_previous_token_after_its_successor_was_rotated_ends_the_login(
    session: Session, login: tuple[User, TokenPair], refresh: Callable[..., TokenPair]
) -> None:
    _, first = login
    second = refresh(first.refresh_token, 0)
    refresh(second.refresh_token, 1)

    with pytest.raises(RefreshTokenReused):
        refresh(first.refresh_token, 2)

    assert _family(session, first.family_id).revoked_at is not None
    assert [d["reason"] for d in _reuse_audits(session)] == ["superseded"]


def test_an_older_token_ends_the_login_even_within_the_grace(
    session: Session, login: tuple[User, TokenPair], refresh: Callable[..., TokenPair]
) -> None:
    _, first = login
    second = refresh(first.refresh_token, 0)
    third = refresh(second.refresh_token, 1)
    refresh(third.refresh_token, 2)

    with pytest.raises(RefreshTokenReused):
        refresh(first.refresh_token, 3)

    assert _family(session, first.family_id).revoked_at is not None


def test_no_grace_configured_means_every_reuse_ends_the_login(
    app: Flask, session: Session, login: tuple[User, TokenPair], refresh: Callable[..., TokenPair]
) -> None:
    _, first = login
    refresh(first.refresh_token, 0)

    with pytest.raises(RefreshTokenReused):
        sessions.refresh_session(
            session,
            first.refresh_token,
            settings=app_token_settings(app),
            refresh_ttl_seconds=3600,
            reuse_grace_seconds=0,
            now=T0,
        )


def test_the_api_answers_a_repeated_refresh_with_the_same_pair(
    app: Flask, client: FlaskClient, session: Session, login: tuple[User, TokenPair]
) -> None:
    user, first = login
    assert app.config["REFRESH_REUSE_GRACE_SECONDS"] > 0

    one = client.post(REFRESH, json={"refresh_token": first.refresh_token})
    two = client.post(REFRESH, json={"refresh_token": first.refresh_token})

    assert one.status_code == two.status_code == 200
    assert one.json["refresh_token"] == two.json["refresh_token"]
    for body in (one.json, two.json):
        me = client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json["id"] == user.id

    # Presented once the grace has passed, the same token ends the login.
    grace = dt.timedelta(seconds=app.config["REFRESH_REUSE_GRACE_SECONDS"] + 1)
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == first.family_id, RefreshToken.used_at.is_not(None))
        .values(used_at=utcnow() - grace)
    )
    late = client.post(REFRESH, json={"refresh_token": first.refresh_token})
    session.rollback()
    assert late.status_code == 401 and late.json["code"] == "REFRESH_TOKEN_REUSED"
    assert _family(session, first.family_id).revoked_at is not None


@pytest.mark.parametrize("family", [None, ""], ids=["no-family-claim", "empty-family-claim"])
def test_an_access_token_without_a_login_family_is_refused(
    app: Flask, client: FlaskClient, login: tuple[User, TokenPair], family: str | None
) -> None:
    _, pair = login
    claims = jwt.decode(
        pair.access_token,
        app.config["SECRET_KEY"],
        algorithms=["HS256"],
        audience=app.config["JWT_AUDIENCE"],
    )
    claims.pop("fam")
    if family is not None:
        claims["fam"] = family
    # Signed with our own key: only the missing family is wrong with it. Such a token could be
    # neither logged out nor revoked on refresh-token reuse.
    token = jwt.encode(
        claims, app.config["SECRET_KEY"], algorithm="HS256", headers={"kid": DEFAULT_KID}
    )

    response = client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_INVALID"

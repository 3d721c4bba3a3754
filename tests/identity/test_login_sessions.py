"""Refresh-token rotation, reuse detection, logout, and roles re-read on refresh."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db import utcnow
from app.identity import sessions
from app.identity.access_tokens import decode_access_token
from app.identity.errors import RefreshTokenExpired
from app.identity.models import (
    LoginFamily,
    RefreshToken,
    StaffAccount,
    StaffRole,
    StaffRoleGrant,
    User,
)
from app.identity.principals import principal_for
from app.identity.sessions import TokenPair
from app.organisation.models import Department, Hall, HallKind
from tests.factories.identity import app_token_settings

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refresh(client: FlaskClient, token: str) -> Any:
    return client.post(REFRESH, json={"refresh_token": token})


def _after_the_grace(app: Flask, session: Session, family_id: str) -> None:
    """Move the family's refreshes back past the reuse grace, as if time had passed."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.used_at.is_not(None))
        .values(
            used_at=utcnow() - dt.timedelta(seconds=app.config["REFRESH_REUSE_GRACE_SECONDS"] + 1)
        )
    )


@pytest.fixture
def citizen_login(
    create_user: Callable[..., User], start_login: Callable[..., TokenPair]
) -> tuple[User, TokenPair]:
    user = create_user()
    return user, start_login("user", user.id)


def test_refresh_rotates_the_refresh_token(
    client: FlaskClient, session: Session, citizen_login: tuple[User, TokenPair]
) -> None:
    user, first = citizen_login

    response = _refresh(client, first.refresh_token)

    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] != first.refresh_token
    assert body["access_token"] != first.access_token
    assert client.get(ME, headers=_bearer(body["access_token"])).json["id"] == user.id
    tokens = session.scalars(
        select(RefreshToken)
        .where(RefreshToken.family_id == first.family_id)
        .order_by(RefreshToken.id)
        .execution_options(populate_existing=True)
    ).all()
    assert len(tokens) == 2
    assert tokens[0].used_at is not None and tokens[1].used_at is None


def test_reusing_a_spent_refresh_token_ends_the_whole_login(
    app: Flask, client: FlaskClient, session: Session, citizen_login: tuple[User, TokenPair]
) -> None:
    user, first = citizen_login
    second = _refresh(client, first.refresh_token).json
    _after_the_grace(app, session, first.family_id)

    reuse = _refresh(client, first.refresh_token)
    # Requests share the test's session: undo what a failed request leaves uncommitted.
    session.rollback()

    assert reuse.status_code == 401
    assert reuse.json["code"] == "REFRESH_TOKEN_REUSED"
    # The request failed, yet the revocation was committed (the view keeps it on purpose).
    family = session.scalars(
        select(LoginFamily)
        .where(LoginFamily.id == first.family_id)
        .execution_options(populate_existing=True)
    ).one()
    assert family.revoked_at is not None and family.revoked_reason == "reuse_detected"
    [entry] = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "session.refresh_reuse_detected")
    ).all()
    assert (entry.actor_kind, entry.actor_id, entry.subject_id) == (
        "user",
        user.id,
        first.family_id,
    )
    # Every token of the family is dead: the thief's and the rightful owner's.
    assert _refresh(client, second["refresh_token"]).json["code"] == "REFRESH_TOKEN_INVALID"
    for access in (first.access_token, second["access_token"]):
        assert client.get(ME, headers=_bearer(access)).status_code == 401


def test_reuse_in_one_login_leaves_other_logins_alone(
    app: Flask,
    client: FlaskClient,
    session: Session,
    create_user: Callable[..., User],
    start_login: Callable[..., TokenPair],
) -> None:
    user = create_user()
    phone, tablet = start_login("user", user.id), start_login("user", user.id)
    _refresh(client, phone.refresh_token)
    _after_the_grace(app, session, phone.family_id)

    assert _refresh(client, phone.refresh_token).json["code"] == "REFRESH_TOKEN_REUSED"
    session.rollback()

    assert client.get(ME, headers=_bearer(tablet.access_token)).status_code == 200
    assert _refresh(client, tablet.refresh_token).status_code == 200


def test_an_unknown_refresh_token_is_refused(client: FlaskClient) -> None:
    response = _refresh(client, "made-up-token")

    assert response.status_code == 401
    assert response.json["code"] == "REFRESH_TOKEN_INVALID"


def test_an_expired_refresh_token_is_refused_and_stays_unused(
    app: Flask, session: Session, citizen_login: tuple[User, TokenPair]
) -> None:
    _, pair = citizen_login

    with pytest.raises(RefreshTokenExpired):
        sessions.refresh_session(
            session,
            pair.refresh_token,
            settings=app_token_settings(app),
            refresh_ttl_seconds=60,
            now=pair.refresh_expires_at + dt.timedelta(seconds=1),
        )

    token = session.scalars(select(RefreshToken)).one()
    assert token.used_at is None


def test_logout_ends_the_access_and_refresh_tokens(
    client: FlaskClient, session: Session, citizen_login: tuple[User, TokenPair]
) -> None:
    _, pair = citizen_login

    response = client.post(LOGOUT, headers=_bearer(pair.access_token))

    assert response.status_code == 204
    after = client.get(ME, headers=_bearer(pair.access_token))
    assert after.status_code == 401 and after.json["code"] == "TOKEN_INVALID"
    assert _refresh(client, pair.refresh_token).json["code"] == "REFRESH_TOKEN_INVALID"
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "session.ended"))
    assert entry.details == {"reason": "logout"}


def test_logout_needs_a_token(client: FlaskClient) -> None:
    assert client.post(LOGOUT).status_code == 401


def test_a_disabled_user_cannot_refresh(
    client: FlaskClient, session: Session, citizen_login: tuple[User, TokenPair]
) -> None:
    user, pair = citizen_login
    user.disabled = True
    session.flush()

    response = _refresh(client, pair.refresh_token)

    assert response.status_code == 401
    assert session.scalars(select(RefreshToken)).one().used_at is None


@pytest.fixture
def hall_and_department(session: Session) -> tuple[Hall, Department]:
    hall = Hall(code="PY-TEST-01", name="测试大厅", kind=HallKind.TOWN)
    department = Department(code="TEST-DEPT", name="测试局")
    session.add_all([hall, department])
    session.flush()
    return hall, department


def test_refresh_of_a_staff_login_reads_the_current_roles(
    app: Flask,
    client: FlaskClient,
    session: Session,
    start_login: Callable[..., TokenPair],
    hall_and_department: tuple[Hall, Department],
) -> None:
    hall, department = hall_and_department
    staff = StaffAccount(username="clerk.test", display_name="测试窗口", password_hash="-")
    staff.grants.append(StaffRoleGrant(role=StaffRole.WINDOW_CLERK, hall_id=hall.id))
    session.add(staff)
    session.flush()
    pair = start_login("staff", staff.id)
    settings = app_token_settings(app)
    before = decode_access_token(settings, pair.access_token, now=utcnow())
    assert (before.roles, before.scopes) == (("window_clerk",), {"window_clerk": [hall.id]})

    session.execute(delete(StaffRoleGrant).where(StaffRoleGrant.staff_id == staff.id))
    session.add(
        StaffRoleGrant(staff_id=staff.id, role=StaffRole.REVIEWER, department_id=department.id)
    )
    session.flush()
    response = _refresh(client, pair.refresh_token)

    assert response.status_code == 200
    after = decode_access_token(settings, response.json["access_token"], now=utcnow())
    assert after.kind == "staff" and after.id == staff.id
    assert (after.roles, after.scopes) == (("reviewer",), {"reviewer": [department.id]})
    assert after.family_id == pair.family_id

    staff.active = False
    session.flush()
    assert _refresh(client, response.json["refresh_token"]).status_code == 401


def test_an_unscoped_grant_of_a_role_wins_over_its_scoped_ones(
    session: Session, hall_and_department: tuple[Hall, Department]
) -> None:
    hall, _ = hall_and_department
    staff = StaffAccount(username="manager.test", display_name="测试主任", password_hash="-")
    staff.grants.extend(
        [
            StaffRoleGrant(role=StaffRole.HALL_MANAGER, hall_id=hall.id),
            StaffRoleGrant(role=StaffRole.HALL_MANAGER),
            StaffRoleGrant(role=StaffRole.ADMIN),
        ]
    )
    session.add(staff)
    session.flush()

    principal = principal_for(session, "staff", staff.id)

    assert principal.roles == ("hall_manager", "admin")
    assert principal.scopes == {}

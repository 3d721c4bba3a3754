"""Staff login: tokens and roles, one answer for every bad credential, lockout that sticks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_limiter.util import get_qualified_name
from limits import parse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db import utcnow
from app.extensions import limiter
from app.identity import errors as identity_errors
from app.identity import passwords
from app.identity import staff as staff_service
from app.identity.models import StaffAccount, StaffRole
from app.organisation.models import Hall
from blueprints.staff.routes import StaffLogin
from tests.factories.staff import STAFF_PASSWORD
from tests.support.staff import assert_no_password_material, audit_actions, end_of_request, login


@pytest.fixture
def clerk(
    session: Session, create_staff: Callable[..., StaffAccount], create_hall: Callable[..., Hall]
) -> StaffAccount:
    hall = create_hall(name="市桥街便民服务中心", town="市桥街")
    account = create_staff(username="clerk.li", grants=[(StaffRole.WINDOW_CLERK, hall.id, None)])
    session.commit()  # setup survives `end_of_request`, as rows made before a request do
    return account


def test_staff_logs_in_and_gets_a_token_pair_with_roles(
    client: FlaskClient, clerk: StaffAccount
) -> None:
    response = login(client, "clerk.li", STAFF_PASSWORD)

    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"] and body["refresh_token"]
    assert 0 < body["expires_in"] <= 300
    assert body["refresh_expires_in"] > body["expires_in"]
    assert body["staff"] == {
        "id": clerk.id,
        "username": "clerk.li",
        "display_name": clerk.display_name,
        "roles": [
            {"role": "window_clerk", "hall_id": clerk.grants[0].hall_id, "department_id": None}
        ],
    }
    assert_no_password_material(body)


def test_username_is_matched_without_case_or_blanks(
    client: FlaskClient, clerk: StaffAccount
) -> None:
    assert login(client, "  Clerk.LI ", STAFF_PASSWORD).status_code == 200


def test_the_staff_token_opens_staff_me_and_refreshes_through_the_shared_endpoint(
    client: FlaskClient, clerk: StaffAccount
) -> None:
    tokens = login(client, "clerk.li", STAFF_PASSWORD).get_json()

    me = client.get(
        "/api/v1/staff/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.get_json()["username"] == "clerk.li"
    assert me.get_json()["roles"][0]["role"] == "window_clerk"
    assert_no_password_material(me.get_json())

    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    again = client.get(
        "/api/v1/staff/me",
        headers={"Authorization": f"Bearer {refreshed.get_json()['access_token']}"},
    )
    assert again.status_code == 200


def test_a_citizen_token_does_not_open_staff_me(
    client: FlaskClient,
    create_user: Callable[..., object],
    citizen_headers: Callable[..., dict[str, str]],
) -> None:
    response = client.get("/api/v1/staff/me", headers=citizen_headers(create_user()))
    assert response.status_code == 403


def test_wrong_password_and_unknown_username_get_the_same_answer(
    client: FlaskClient, clerk: StaffAccount
) -> None:
    wrong_password = login(client, "clerk.li", "Not-the-password-1")
    unknown_user = login(client, "nobody.here", "Not-the-password-1")

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json() == unknown_user.get_json()
    assert wrong_password.get_json()["code"] == "LOGIN_FAILED"


def test_an_unknown_username_still_costs_a_password_verification(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = passwords.verify_password

    def spy(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", spy)
    with pytest.raises(identity_errors.LoginFailed):
        staff_service.authenticate(
            session, "nobody.here", "whatever", now=utcnow(), max_failures=5, lockout_minutes=15
        )
    assert len(verified) == 1 and verified[0].startswith("$argon2id$")


def test_failed_logins_are_counted_even_though_each_request_fails(
    client: FlaskClient, session: Session, clerk: StaffAccount
) -> None:
    for _ in range(3):
        assert login(client, "clerk.li", "Wrong-password-1").status_code == 401
        end_of_request(session)

    session.refresh(clerk)
    assert clerk.failed_logins == 3
    assert audit_actions(session, clerk.id).count("staff.login_failed") == 3


def test_the_account_locks_after_max_failures_and_refuses_even_the_right_password(
    app: Flask, client: FlaskClient, session: Session, clerk: StaffAccount
) -> None:
    limit = app.config["STAFF_MAX_FAILED_LOGINS"]
    for _ in range(limit - 1):
        assert login(client, "clerk.li", "Wrong-password-1").status_code == 401
        end_of_request(session)

    locking = login(client, "clerk.li", "Wrong-password-1")
    end_of_request(session)
    assert locking.status_code == 423
    assert locking.get_json()["code"] == "ACCOUNT_LOCKED"

    right = login(client, "clerk.li", STAFF_PASSWORD)
    end_of_request(session)
    assert right.status_code == 423
    locked_until = dt.datetime.fromisoformat(right.get_json()["details"]["locked_until"])
    expected = utcnow() + dt.timedelta(minutes=app.config["STAFF_LOCKOUT_MINUTES"])
    assert abs(locked_until - expected) < dt.timedelta(minutes=1)

    session.refresh(clerk)
    assert clerk.locked_until == locked_until
    assert "staff.locked" in audit_actions(session, clerk.id)


def test_the_lock_lifts_when_its_window_has_passed(
    client: FlaskClient, session: Session, clerk: StaffAccount
) -> None:
    clerk.locked_until = utcnow() - dt.timedelta(seconds=1)
    clerk.failed_logins = 0
    session.commit()

    response = login(client, "clerk.li", STAFF_PASSWORD)

    assert response.status_code == 200
    session.refresh(clerk)
    assert clerk.locked_until is None


def test_lockout_counts_again_from_zero_after_the_window(
    session: Session, clerk: StaffAccount
) -> None:
    start = utcnow()
    settings: dict[str, Any] = {"max_failures": 3, "lockout_minutes": 15}
    for _ in range(2):
        with pytest.raises(identity_errors.LoginFailed):
            staff_service.authenticate(session, "clerk.li", "bad", now=start, **settings)
    with pytest.raises(identity_errors.AccountLocked):
        staff_service.authenticate(session, "clerk.li", "bad", now=start, **settings)
    with pytest.raises(identity_errors.AccountLocked):
        staff_service.authenticate(
            session, "clerk.li", STAFF_PASSWORD, now=start + dt.timedelta(minutes=14), **settings
        )

    later = start + dt.timedelta(minutes=16)
    with pytest.raises(identity_errors.LoginFailed):
        staff_service.authenticate(session, "clerk.li", "bad", now=later, **settings)
    account = staff_service.authenticate(session, "clerk.li", STAFF_PASSWORD, now=later, **settings)
    assert account.failed_logins == 0 and account.locked_until is None


def test_a_successful_login_resets_the_failure_count(
    client: FlaskClient, session: Session, clerk: StaffAccount
) -> None:
    login(client, "clerk.li", "Wrong-password-1")
    end_of_request(session)
    assert login(client, "clerk.li", STAFF_PASSWORD).status_code == 200

    session.refresh(clerk)
    assert clerk.failed_logins == 0
    assert clerk.last_login_at is not None


def test_a_deactivated_account_cannot_log_in(
    client: FlaskClient, session: Session, clerk: StaffAccount
) -> None:
    clerk.active = False
    session.flush()

    right = login(client, "clerk.li", STAFF_PASSWORD)
    wrong = login(client, "clerk.li", "Wrong-password-1")

    assert right.status_code == 401 and right.get_json()["code"] == "ACCOUNT_DISABLED"
    # Without the password nobody learns that the account exists, let alone that it is off.
    assert wrong.status_code == 401 and wrong.get_json()["code"] == "LOGIN_FAILED"


def test_a_hash_made_with_old_parameters_is_upgraded_at_login(
    client: FlaskClient,
    session: Session,
    create_staff: Callable[..., StaffAccount],
    create_hall: Callable[..., Hall],
) -> None:
    old = passwords.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    account = create_staff(username="old.hash", password_hash=old.hash(STAFF_PASSWORD))

    assert login(client, "old.hash", STAFF_PASSWORD).status_code == 200

    session.refresh(account)
    assert not passwords.needs_rehash(account.password_hash)
    assert passwords.verify_password(account.password_hash, STAFF_PASSWORD)


def test_logins_are_audited_without_the_attempted_username(
    client: FlaskClient, session: Session, clerk: StaffAccount
) -> None:
    login(client, "clerk.li", STAFF_PASSWORD)
    login(client, "Secret-typed-as-username", "x")
    end_of_request(session)

    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action.like("staff.login%")).order_by(AuditEntry.id)
    ).all()
    assert [e.action for e in entries] == ["staff.login", "staff.login_failed"]
    assert entries[0].actor_kind == "staff" and entries[0].actor_id == clerk.id
    assert entries[1].details == {"reason": "unknown_username"}
    assert "Secret" not in str(entries[1].details)


def test_the_login_view_carries_the_configured_rate_limit(app: Flask) -> None:
    # The suite runs with rate limiting off (a disabled Flask-Limiter cannot be switched on
    # for one test), so check the declaration: the login view is limited by RATELIMIT_LOGIN.
    # The limit is on the class (`decorators`), so it wraps the view function Flask calls.
    view = next(
        v for v in app.view_functions.values() if getattr(v, "view_class", None) is StaffLogin
    )
    with app.test_request_context():
        limits = limiter.limit_manager.decorated_limits(get_qualified_name(view))
        declared = [runtime.limit for runtime in limits]
    assert declared == [parse(app.config["RATELIMIT_LOGIN"])]

"""Mini-program login with a wx.login code, through the emulator over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.audit import service as audit
from app.audit.chain import AuditChain
from app.audit.checkpoints import CheckpointSigner, CheckpointStore
from app.audit.links import MacKeys
from app.audit.models import AuditEntry
from app.identity.models import LoginFamily, RefreshToken, User
from app.identity.sessions import TokenPair
from app.security.crypto import FieldCipher, hash_token
from tests.support.audit import key_spec
from wechat.emulator import Emulator

LOGIN = "/api/v1/auth/wechat/login"


def _login(client: FlaskClient, code: str) -> TestResponse:
    return client.post(LOGIN, json={"code": code})


def _audit(session: Session, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_first_login_creates_the_user_and_returns_both_tokens(
    client: FlaskClient, session: Session, wechat_login_code: Callable[..., str]
) -> None:
    response = _login(client, wechat_login_code("o_first_login"))

    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["refresh_expires_in"] > body["expires_in"]
    assert body["user"] == {
        "id": body["user"]["id"],
        "phone_bound": False,
        "realname_verified": False,
    }
    user = session.get(User, body["user"]["id"])
    assert user is not None and user.openid == "o_first_login"
    assert user.last_login_at is not None
    stored = session.scalars(select(RefreshToken)).one()
    assert stored.token_hash == hash_token(body["refresh_token"])
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json["id"] == user.id


def test_logging_in_again_finds_the_same_user(
    client: FlaskClient, session: Session, wechat_login_code: Callable[..., str]
) -> None:
    first = _login(client, wechat_login_code("o_returning"))
    second = _login(client, wechat_login_code("o_returning"))

    assert first.status_code == second.status_code == 200
    assert first.json["user"]["id"] == second.json["user"]["id"]
    assert session.scalars(select(User.openid)).all() == ["o_returning"]
    # Each login is its own session: logging in on a second phone does not end the first.
    assert session.scalar(select(func.count()).select_from(LoginFamily)) == 2


def test_login_keeps_the_session_key_sealed_and_records_unionid(
    client: FlaskClient, session: Session, emulator: Emulator, field_cipher: FieldCipher
) -> None:
    code = emulator.login(openid="o_with_union", unionid="u_union_1")["code"]

    response = _login(client, code)

    user = session.get(User, response.json["user"]["id"])
    assert user is not None and user.unionid == "u_union_1"
    assert user.session_key_sealed is not None and user.session_key_sealed.startswith("v1:")
    session_key = field_cipher.decrypt(user.session_key_sealed, context="users.session_key")
    assert session_key not in response.get_data(as_text=True)
    assert "session_key" not in response.get_data(as_text=True)


def test_a_code_works_only_once(
    client: FlaskClient, session: Session, wechat_login_code: Callable[..., str]
) -> None:
    code = wechat_login_code()
    assert _login(client, code).status_code == 200

    again = _login(client, code)

    assert again.status_code == 401
    assert again.json["code"] == "WECHAT_CODE_USED"
    assert again.json["message"]


def test_an_unknown_code_is_refused_and_the_failure_audited(
    client: FlaskClient, session: Session
) -> None:
    response = _login(client, "not-a-code-wechat-gave")
    # Requests share the test's session: undo what a failed request leaves uncommitted.
    session.rollback()

    assert response.status_code == 401
    assert response.json["code"] == "WECHAT_CODE_INVALID"
    assert response.json["message"].startswith("无效的登录凭证")
    [failure] = _audit(session, "user.login_failed")
    assert failure.actor_kind == "anonymous"
    assert failure.details["reason"] == "WECHAT_CODE_INVALID"
    assert "not-a-code-wechat-gave" not in str(failure.details)
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_an_expired_code_is_refused_as_invalid(
    client: FlaskClient,
    emulator: Emulator,
    wechat_login_code: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = wechat_login_code()
    later = time.time() + emulator.code_ttl + 1
    monkeypatch.setattr(emulator, "clock", lambda: later)

    response = _login(client, code)

    assert response.status_code == 401
    assert response.json["code"] == "WECHAT_CODE_INVALID"


def test_wechat_rate_limiting_beyond_the_retries_answers_503(
    client: FlaskClient,
    session: Session,
    emulator: Emulator,
    wechat_login_code: Callable[..., str],
) -> None:
    code = wechat_login_code()
    # The client tries three times (two retries); each attempt meets the quota error.
    emulator.inject_fault("jscode2session", errcode=45011, times=3)

    response = _login(client, code)
    # Requests share the test's session: undo what a failed request leaves uncommitted.
    session.rollback()

    assert response.status_code == 503
    assert response.json["code"] == "WECHAT_UNAVAILABLE"
    [failure] = _audit(session, "user.login_failed")
    assert failure.details == {"reason": "WECHAT_UNAVAILABLE", "errcode": 45011}


def test_a_disabled_user_cannot_log_in(
    client: FlaskClient,
    session: Session,
    create_user: Callable[..., User],
    wechat_login_code: Callable[..., str],
) -> None:
    user = create_user(openid="o_disabled", disabled=True)

    response = _login(client, wechat_login_code("o_disabled"))
    # Requests share the test's session: undo what a failed request leaves uncommitted.
    session.rollback()

    assert response.status_code == 403
    assert response.json["code"] == "USER_DISABLED"
    assert session.scalar(select(func.count()).select_from(LoginFamily)) == 0
    [failure] = _audit(session, "user.login_failed")
    assert failure.actor_id == user.id


def test_a_disabled_users_login_leaves_the_account_untouched(
    client: FlaskClient,
    session: Session,
    create_user: Callable[..., User],
    wechat_login_code: Callable[..., str],
) -> None:
    user = create_user(openid="o_disabled_kept", disabled=True)
    user.session_key_sealed = "v1:before"
    session.flush()

    response = _login(client, wechat_login_code("o_disabled_kept"))
    session.rollback()
    session.refresh(user)

    assert response.status_code == 403
    assert user.session_key_sealed == "v1:before"
    assert user.last_login_at is None


def test_a_successful_login_is_audited_with_the_request_id(
    client: FlaskClient, session: Session, wechat_login_code: Callable[..., str]
) -> None:
    response = client.post(
        LOGIN, json={"code": wechat_login_code()}, headers={"X-Request-ID": "req-login-0001"}
    )

    [entry] = _audit(session, "user.login")
    assert entry.actor_kind == "user"
    assert entry.actor_id == response.json["user"]["id"]
    assert entry.request_id == "req-login-0001"
    assert entry.details == {}


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "x", "extra": 1}, {"code": 123}])
def test_a_malformed_login_body_is_refused(client: FlaskClient, body: dict[str, object]) -> None:
    response = client.post(LOGIN, json=body)

    assert response.status_code == 422
    assert response.json["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize("level", ["none", "checksum", "verified", "face"])
def test_the_login_token_carries_what_principal_for_reads_from_the_account(
    client: FlaskClient,
    session: Session,
    wechat_login_code: Callable[..., str],
    create_user: Callable[..., User],
    create_verified_user: Callable[..., User],
    start_login: Callable[..., TokenPair],
    field_cipher: FieldCipher,
    level: str,
) -> None:
    # The login builds its principal from the upsert's returned columns instead of reading
    # the user again: its token must say what a token from `principal_for` says.
    user = create_user() if level == "none" else create_verified_user(level=level)
    user.phone_sealed = field_cipher.encrypt("13912345678", context="users.phone")
    session.flush()

    response = _login(client, wechat_login_code(user.openid))

    assert response.status_code == 200
    assert response.json["user"] == {
        "id": user.id,
        "phone_bound": True,
        "realname_verified": level != "none",
    }
    volatile = {"iat", "nbf", "exp", "jti", "fam"}
    login_claims = jwt.decode(response.json["access_token"], options={"verify_signature": False})
    expected = jwt.decode(
        start_login("user", user.id).access_token, options={"verify_signature": False}
    )
    assert {k: v for k, v in login_claims.items() if k not in volatile} == {
        k: v for k, v in expected.items() if k not in volatile
    }


def test_a_login_writes_its_family_token_and_audit_entry_together(
    client: FlaskClient,
    session: Session,
    wechat_login_code: Callable[..., str],
    tmp_path: Path,
) -> None:
    """On PostgreSQL these four writes are one statement (`citizens._login_statement`); each
    row must be what the statements one by one write on SQLite, and the entry must seal and
    verify like any other."""
    response = _login(client, wechat_login_code("o_together"))

    user_id = response.json["user"]["id"]
    family = session.scalars(select(LoginFamily)).one()
    assert (family.principal_kind.value, family.principal_id) == ("user", user_id)
    assert family.revoked_at is None and family.created_at is not None
    token = session.scalars(select(RefreshToken)).one()
    assert token.family_id == family.id and token.used_at is None
    assert token.token_hash == hash_token(response.json["refresh_token"])
    lifetime = (token.expires_at - token.issued_at).total_seconds()
    assert lifetime == client.application.config["REFRESH_TOKEN_TTL_SECONDS"]
    [entry] = _audit(session, "user.login")
    assert (entry.actor_kind, entry.actor_id) == ("user", user_id)
    assert (entry.subject_type, entry.subject_id) == ("user", str(user_id))
    claims = jwt.decode(response.json["access_token"], options={"verify_signature": False})
    assert claims["fam"] == family.id and claims["sub"] == f"user:{user_id}"
    chain = AuditChain(
        mac_keys=MacKeys.from_spec(key_spec("m1")),
        signer=CheckpointSigner.from_spec(key_spec("c1")),
        checkpoints=CheckpointStore(tmp_path / "checkpoints"),
    )
    assert audit.seal_pending(session, chain) == 1
    assert audit.verify(session, chain) == audit.VerifyReport(entries=1, ok=True)

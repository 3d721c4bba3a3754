"""Issue 14, security: every key rotates as README's "Key rotation" runbook says: JWT signing
keys (kid), personal-data keys (re-encryption), the seal master key (re-wrapping) and the
audit link keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.db import utcnow
from app.identity.access_tokens import TokenSettings, parse_signing_keys
from app.identity.citizens import PHONE_CONTEXT, SESSION_KEY_CONTEXT
from app.identity.models import User
from app.identity.realname import ID_NUMBER_CONTEXT, NAME_CONTEXT
from app.identity.sessions import TokenPair
from app.organisation.models import Department
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, create_seal
from app.seals.models import SealKey, SealKind
from app.seals.rotation import rewrap_keys
from app.seals.verification import verify_upload
from app.security.crypto import CryptoError, FieldCipher
from app.security.rotation import reencrypt_all, sealed_columns, unlisted_sealed_columns
from config import ConfigError, load_config
from seals import pki as pki_lib
from seals.keys import KeyError_
from tests.core.test_config import SAFE_PRODUCTION
from tests.factories.seals import WEATHER_DATA, stored_pdf
from tests.support.audit import key_spec

ME = "/api/v1/me"


def _random_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# --- JWT signing keys -------------------------------------------------------------------


@pytest.fixture
def jwt_keys(app: Flask) -> Iterator[Callable[[str], None]]:
    """Set JWT_SIGNING_KEYS of the running app, as a restart with a new environment would."""
    before = app.config["JWT_SIGNING_KEYS"]
    yield lambda spec: app.config.update(JWT_SIGNING_KEYS=spec)
    app.config["JWT_SIGNING_KEYS"] = before


OLD = "old:" + "o" * 40
NEW = "new:" + "n" * 40


def _garbage_answer(client: FlaskClient) -> tuple[int, Any]:
    response = client.get(ME, headers={"Authorization": "Bearer not.a.token"})
    return response.status_code, response.json


def test_a_token_of_the_old_key_verifies_after_rotation_and_is_refused_once_it_is_removed(
    client: FlaskClient,
    create_user: Callable[..., User],
    start_login: Callable[..., TokenPair],
    jwt_keys: Callable[[str], None],
) -> None:
    user = create_user()
    jwt_keys(OLD)
    old_token = start_login("user", user.id).access_token
    assert jwt.get_unverified_header(old_token)["kid"] == "old"

    jwt_keys(f"{NEW},{OLD}")  # the new key put first: it signs, both verify
    new_token = start_login("user", user.id).access_token
    assert jwt.get_unverified_header(new_token)["kid"] == "new"
    for token in (old_token, new_token):
        assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    jwt_keys(NEW)  # the old key removed
    refused = client.get(ME, headers={"Authorization": f"Bearer {old_token}"})
    assert (refused.status_code, refused.json) == _garbage_answer(client)
    assert refused.json["code"] == "TOKEN_INVALID"
    assert client.get(ME, headers={"Authorization": f"Bearer {new_token}"}).status_code == 200


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    """A JWT signed by hand: PyJWT itself will not write a header such as a numeric kid."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(mac)}"


@pytest.mark.parametrize(
    "header", [{}, {"kid": "zz"}, {"kid": 7}], ids=["no-kid", "unknown-kid", "kid-not-a-string"]
)
def test_a_token_whose_kid_is_missing_or_unknown_is_refused_as_invalid(
    app: Flask,
    client: FlaskClient,
    create_user: Callable[..., User],
    start_login: Callable[..., TokenPair],
    jwt_keys: Callable[[str], None],
    header: dict[str, Any],
) -> None:
    jwt_keys(NEW)
    genuine = start_login("user", create_user().id).access_token
    claims = jwt.decode(genuine, options={"verify_signature": False})
    # Signed with the right secret: only the key id is wrong.
    forged = _hs256({"alg": "HS256", "typ": "JWT", **header}, claims, NEW.partition(":")[2])

    response = client.get(ME, headers={"Authorization": f"Bearer {forged}"})

    assert (response.status_code, response.json) == _garbage_answer(client)
    assert client.get(ME, headers={"Authorization": f"Bearer {genuine}"}).status_code == 200


def test_without_jwt_signing_keys_the_secret_key_signs_under_a_fixed_kid(app: Flask) -> None:
    settings = TokenSettings.from_config({**app.config, "JWT_SIGNING_KEYS": ""})

    assert settings.signing_keys == (("s0", app.config["SECRET_KEY"]),)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [("nokid", "kid:secret"), ("a:", "kid:secret"), ("a b:x", "kid:secret"), ("a:x,a:y", "twice")],
)
def test_a_malformed_key_list_is_refused_without_echoing_secrets(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as refused:
        parse_signing_keys(spec, "fallback")
    assert "x" not in str(refused.value).replace("JWT_SIGNING_KEYS", "").replace("kid:secret", "")


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("", "JWT_SIGNING_KEYS must be set"),
        ("j1:short", "at least 32"),
        ("j1:" + "x" * 48, "not SECRET_KEY"),  # SAFE_PRODUCTION's SECRET_KEY
    ],
)
def test_production_requires_its_own_jwt_signing_keys(
    monkeypatch: pytest.MonkeyPatch, value: str, complaint: str
) -> None:
    for name, setting in {**SAFE_PRODUCTION, "JWT_SIGNING_KEYS": value}.items():
        monkeypatch.setenv(name, setting)

    with pytest.raises(ConfigError, match=complaint):
        load_config("production")


# --- personal-data keys (DATA_KEYS) -----------------------------------------------------

VALUES = {
    "session_key_sealed": (SESSION_KEY_CONTEXT, "c2Vzc2lvbi1rZXk="),
    "phone_sealed": (PHONE_CONTEXT, "13800138000"),
    "real_name_sealed": (NAME_CONTEXT, "陈伟"),
    "id_number_sealed": (ID_NUMBER_CONTEXT, "440113199001011234"),
}


@pytest.fixture
def data_ciphers(app: Flask) -> dict[str, FieldCipher]:
    """The app's cipher (its key listed last, for rows other tests committed), and the same
    with a new key put first, and with only the new key."""
    index_key = app.config["DATA_INDEX_KEY"]
    app_keys = app.config["DATA_KEYS"]
    old, new = f"d1:{_random_key()}", f"d2:{_random_key()}"
    return {
        "old": FieldCipher.from_config(f"{old},{app_keys}", index_key),
        "rotated": FieldCipher.from_config(f"{new},{old},{app_keys}", index_key),
        "retired": FieldCipher.from_config(f"{new},{app_keys}", index_key),
    }


def _sealed_users(
    session: Session, create_user: Callable[..., User], cipher: FieldCipher
) -> list[User]:
    users = [create_user(), create_user()]
    for user in users:
        for column, (context, value) in VALUES.items():
            setattr(user, column, cipher.encrypt(value, context=context))
    session.flush()
    return users


def _assert_opens(session: Session, users: list[User], cipher: FieldCipher, kid: str) -> None:
    for user in users:
        session.refresh(user)
        for column, (context, value) in VALUES.items():
            token = getattr(user, column)
            assert FieldCipher.key_id_of(token) == kid, column
            assert cipher.decrypt(token, context=context) == value


def test_data_reencrypted_under_a_new_key_still_opens_once_the_old_key_is_removed(
    app: Flask,
    session: Session,
    create_user: Callable[..., User],
    data_ciphers: dict[str, FieldCipher],
) -> None:
    users = _sealed_users(session, create_user, data_ciphers["old"])
    session.commit()
    with pytest.raises(CryptoError):  # without re-encryption, removing the key loses them
        data_ciphers["retired"].decrypt(users[0].phone_sealed or "", context=PHONE_CONTEXT)

    factory = app.extensions["db"].sessionmaker
    results = {r.column: r for r in reencrypt_all(factory, data_ciphers["rotated"], batch=1)}

    assert set(results) == {column.name for column in sealed_columns()}
    for column in VALUES:
        assert results[f"users.{column}"].resealed >= len(users)
        assert not results[f"users.{column}"].unreadable
    _assert_opens(session, users, data_ciphers["retired"], "d2")
    # Run again: nothing left under another key, nothing rewritten.
    again = list(reencrypt_all(factory, data_ciphers["rotated"]))
    assert sum(r.resealed for r in again) == 0


def test_a_value_the_app_rewrote_meanwhile_is_not_overwritten(
    app: Flask,
    session: Session,
    create_user: Callable[..., User],
    data_ciphers: dict[str, FieldCipher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (user, *_) = _sealed_users(session, create_user, data_ciphers["old"])
    session.commit()
    rotated = data_ciphers["rotated"]
    fresh = rotated.encrypt("13900139000", context=PHONE_CONTEXT)
    decrypt = rotated.decrypt

    def decrypt_while_the_citizen_rebinds(token: str, *, context: str) -> str:
        if context == PHONE_CONTEXT and token == user.phone_sealed:
            with app.extensions["db"].sessionmaker() as other:
                other.get(User, user.id).phone_sealed = fresh  # type: ignore[union-attr]
                other.commit()
        return decrypt(token, context=context)

    monkeypatch.setattr(rotated, "decrypt", decrypt_while_the_citizen_rebinds)
    results = {r.column: r for r in reencrypt_all(app.extensions["db"].sessionmaker, rotated)}

    assert results["users.phone_sealed"].raced == 1
    session.refresh(user)
    assert user.phone_sealed == fresh


def test_every_sealed_column_of_the_models_is_rotated() -> None:
    assert unlisted_sealed_columns() == []


def _invoke(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=list(args), catch_exceptions=False)


def test_the_keys_commands_report_and_reencrypt(
    app: Flask,
    session: Session,
    runner: FlaskCliRunner,
    create_user: Callable[..., User],
    data_ciphers: dict[str, FieldCipher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = _sealed_users(session, create_user, data_ciphers["old"])
    session.commit()
    monkeypatch.setitem(app.extensions, "cipher", data_ciphers["rotated"])

    before = _invoke(runner, "keys", "data-report")
    assert before.exit_code == 0
    assert "current data key: d2" in before.output
    assert "users.phone_sealed: d1=2" in before.output
    assert "policy_receiving_accounts.account_number_sealed:" in before.output

    done = _invoke(runner, "keys", "reencrypt-data", "--batch", "1")
    assert done.exit_code == 0, done.output
    assert "users.phone_sealed: 2 re-encrypted" in done.output

    after = _invoke(runner, "keys", "data-report")
    assert "users.phone_sealed: d2=2" in after.output
    _assert_opens(session, users, data_ciphers["retired"], "d2")


def test_reencrypt_data_fails_on_values_no_listed_key_opens(
    app: Flask,
    session: Session,
    runner: FlaskCliRunner,
    create_user: Callable[..., User],
    data_ciphers: dict[str, FieldCipher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sealed_users(session, create_user, data_ciphers["old"])
    session.commit()
    monkeypatch.setitem(app.extensions, "cipher", data_ciphers["retired"])  # d1 removed too soon

    result = runner.invoke(args=["keys", "reencrypt-data"])

    assert result.exit_code == 1
    assert "users.phone_sealed: 0 re-encrypted, 2 unreadable" in result.output


# --- seal master key (SEAL_MASTER_KEY) --------------------------------------------------


@pytest.fixture
def seal_contexts(app: Flask, tmp_path: Path) -> Callable[[str], SealContext]:
    """Seal contexts over one PKI of this test, each with its own SEAL_MASTER_KEY."""
    config = dict(app.config)
    config.update(SEAL_PKI_DIR=str(tmp_path / "pki"), SEAL_STORAGE_DIR=str(tmp_path / "docs"))

    def make(master_keys: str) -> SealContext:
        return SealContext.from_config({**config, "SEAL_MASTER_KEY": master_keys})

    return make


def _issue(session: Session, ctx: SealContext, seal: Any) -> bytes:
    document = issue_document(
        session,
        ctx,
        seal=seal,
        template="meteorological_certificate",
        holder=Holder(name="广州市番禺区某某建筑有限公司", id_number="91440113MA5XXXXX0G"),
        data=WEATHER_DATA,
        actor=SealActor("system"),
        now=utcnow(),
        matter="meteorological_certificate",
    )
    return stored_pdf(ctx, document)


def test_seal_keys_rewrapped_under_a_new_master_key_sign_once_the_old_one_is_removed(
    app: Flask,
    session: Session,
    seal_contexts: Callable[[str], SealContext],
    create_department: Callable[..., Department],
) -> None:
    dev = app.config["SEAL_MASTER_KEY"]  # rows other tests committed stay readable
    old, new = f"m1:{_random_key()}", f"m2:{_random_key()}"
    before = seal_contexts(f"{old},{dev}")
    _pki, files = pki_lib.init_dev_pki(
        before.software, crl_base_url=before.crl_base_url, now=utcnow()
    )
    pki_lib.write_pki(before.pki_dir, files)
    now = utcnow()
    seal = create_seal(
        session,
        before,
        department=create_department(),
        kind=SealKind.APPROVAL,
        valid_until=now + dt.timedelta(days=30),
        authorised_roles=["reviewer"],
        authorised_templates=["meteorological_certificate"],
        authorised_matters=["meteorological_certificate"],
        actor=audit.Actor.system(),
        now=now,
    )
    session.flush()
    with pytest.raises(KeyError_):  # the new key alone cannot open the old envelopes yet
        _issue(session, seal_contexts(f"{new},{dev}"), seal)

    result = rewrap_keys(session, seal_contexts(f"{new},{old},{dev}"))
    session.commit()

    assert result.rewrapped_rows >= 1
    assert sorted(result.rewrapped_files) == ["issuing.key.json", "root.key.json"]
    assert (before.pki_dir / "issuing.key.json").stat().st_mode & 0o077 == 0
    envelope = session.scalars(select(SealKey.wrapped).where(SealKey.id == seal.key_id)).one()
    assert b'"kek":"m2"' in (envelope or b"")
    after = seal_contexts(f"{new},{dev}")  # m1 removed
    pdf = _issue(session, after, seal)
    assert verify_upload(session, after, pdf, now=utcnow())["status"] == "valid"
    # Run again: everything is under m2 already.
    again = rewrap_keys(session, seal_contexts(f"{new},{old},{dev}"))
    assert again.rewrapped_rows == 0 and again.rewrapped_files == []


def test_rewrap_keys_command_names_a_missing_old_master_key(
    app: Flask,
    session: Session,
    runner: FlaskCliRunner,
    seal_contexts: Callable[[str], SealContext],
    create_department: Callable[..., Department],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = seal_contexts(f"m1:{_random_key()}")
    _pki, files = pki_lib.init_dev_pki(ctx.software, crl_base_url=ctx.crl_base_url, now=utcnow())
    pki_lib.write_pki(ctx.pki_dir, files)
    monkeypatch.setitem(app.extensions, "seals", seal_contexts(f"m2:{_random_key()}"))

    result = runner.invoke(args=["seals", "rewrap-keys"])

    assert result.exit_code == 1
    assert "cannot open key 'ca-issuing'" in result.output
    assert "SEAL_MASTER_KEY" in result.output


def test_rewrap_keys_command_reports_what_it_did(
    app: Flask,
    session: Session,
    runner: FlaskCliRunner,
    seal_contexts: Callable[[str], SealContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = f"m1:{_random_key()}"
    ctx = seal_contexts(old)
    _pki, files = pki_lib.init_dev_pki(ctx.software, crl_base_url=ctx.crl_base_url, now=utcnow())
    pki_lib.write_pki(ctx.pki_dir, files)
    monkeypatch.setitem(
        app.extensions,
        "seals",
        seal_contexts(f"m2:{_random_key()},{old},{app.config['SEAL_MASTER_KEY']}"),
    )

    result = _invoke(runner, "seals", "rewrap-keys")

    assert result.exit_code == 0
    assert "issuing.key.json: re-wrapped under m2" in result.output
    assert "root.key.json: re-wrapped under m2" in result.output


# --- audit link keys (AUDIT_MAC_KEYS) ---------------------------------------------------


@pytest.fixture
def audit_keys(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set the app's AUDIT_MAC_KEYS (the app's own key listed last, for entries other tests
    committed) and checkpoint into this test's folder."""
    dev = app.config["AUDIT_MAC_KEYS"]
    monkeypatch.setitem(app.config, "AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))

    def set_keys(*key_ids: str) -> None:
        monkeypatch.setitem(app.config, "AUDIT_MAC_KEYS", f"{key_spec(*key_ids)},{dev}")

    return set_keys


def _record(session: Session, count: int, start: int) -> None:
    for n in range(start, start + count):
        audit.record(
            session,
            "staff.login",
            actor=audit.Actor("staff", n),
            now=utcnow(),
            subject_type="staff",
            subject_id=n,
            details={"outcome": "ok"},
        )
    session.commit()


def test_audit_verify_checks_old_links_while_the_old_key_is_listed_and_says_which_key_is_missing(
    session: Session, runner: FlaskCliRunner, audit_keys: Callable[..., None]
) -> None:
    audit_keys("a1")
    _record(session, 2, start=1)
    assert "sealed 2" in _invoke(runner, "audit", "seal").output

    audit_keys("a2", "a1")  # rotated: a2 links new entries, a1 still verifies
    _record(session, 2, start=3)
    _invoke(runner, "audit", "seal")
    from app.audit.models import AuditEntry

    key_ids = session.scalars(
        select(AuditEntry.key_id)
        .where(AuditEntry.key_id.in_(["a1", "a2"]))
        .order_by(AuditEntry.seq)
    ).all()
    assert key_ids == ["a1", "a1", "a2", "a2"]
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact" in intact.output

    audit_keys("a2")  # a1 removed: its links can no longer be checked, and verify says so
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "linked with unknown key id 'a1'" in broken.output
    assert "list the retired key again" in broken.output

"""Binding the phone number a user authorised, by code and by legacy encryptedData."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.identity.models import User
from app.security.crypto import FieldCipher

PHONE = "/api/v1/me/phone"


def _dev(emulator_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{emulator_url}/_emulator/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def logged_in(
    client: FlaskClient, session: Session, wechat_login_code: Callable[..., str]
) -> tuple[User, dict[str, str]]:
    """A user logged in through the API, so WeChat and we share a fresh session_key."""
    body = client.post(
        "/api/v1/auth/wechat/login", json={"code": wechat_login_code("o_phone_owner")}
    ).json
    user = session.get(User, body["user"]["id"])
    assert user is not None
    return user, {"Authorization": f"Bearer {body['access_token']}"}


def test_binding_by_code_stores_the_phone_sealed_and_shows_it_masked(
    client: FlaskClient,
    session: Session,
    emulator_url: str,
    field_cipher: FieldCipher,
    logged_in: tuple[User, dict[str, str]],
) -> None:
    user, headers = logged_in
    code = _dev(emulator_url, "phone-code", {"phone": "13800138000"})["code"]

    response = client.post(PHONE, json={"code": code}, headers=headers)

    assert response.status_code == 200
    assert response.json["phone"] == "138****8000"
    assert response.json["phone_bound"] is True
    assert "13800138000" not in response.get_data(as_text=True)
    session.refresh(user)
    assert user.phone_sealed and "13800138000" not in user.phone_sealed
    assert field_cipher.decrypt(user.phone_sealed, context="users.phone") == "13800138000"
    assert user.phone_index == field_cipher.blind_index("13800138000", context="users.phone")
    assert user.phone_bound_at is not None
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.phone_bound"))
    assert entry.details == {"method": "code"}
    me = client.get("/api/v1/me", headers=headers).json
    assert me["phone"] == "138****8000"


def test_a_phone_code_works_only_once(
    client: FlaskClient, emulator_url: str, logged_in: tuple[User, dict[str, str]]
) -> None:
    _, headers = logged_in
    code = _dev(emulator_url, "phone-code", {"phone": "13800138000"})["code"]
    client.post(PHONE, json={"code": code}, headers=headers)

    again = client.post(PHONE, json={"code": code}, headers=headers)

    assert again.status_code == 422
    assert again.json["code"] == "PHONE_CODE_USED"


def test_an_unknown_phone_code_is_refused(
    client: FlaskClient, logged_in: tuple[User, dict[str, str]]
) -> None:
    _, headers = logged_in

    response = client.post(PHONE, json={"code": "f" * 64}, headers=headers)

    assert response.status_code == 422
    assert response.json["code"] == "PHONE_CODE_INVALID"


def test_binding_by_encrypted_data_opens_it_with_the_login_session_key(
    client: FlaskClient,
    session: Session,
    emulator_url: str,
    field_cipher: FieldCipher,
    logged_in: tuple[User, dict[str, str]],
) -> None:
    user, headers = logged_in
    sealed = _dev(emulator_url, "encrypted-phone", {"openid": user.openid, "phone": "13912345678"})

    response = client.post(
        PHONE,
        json={"encrypted_data": sealed["encryptedData"], "iv": sealed["iv"]},
        headers=headers,
    )

    assert response.status_code == 200
    assert response.json["phone"] == "139****5678"
    session.refresh(user)
    assert field_cipher.decrypt(user.phone_sealed or "", context="users.phone") == "13912345678"
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.phone_bound"))
    assert entry.details == {"method": "encrypted_data"}


@pytest.mark.parametrize("tamper", ["garbage", "other_app"])
def test_encrypted_data_that_does_not_open_is_refused(
    client: FlaskClient,
    session: Session,
    emulator_url: str,
    logged_in: tuple[User, dict[str, str]],
    tamper: str,
) -> None:
    user, headers = logged_in
    request: dict[str, Any] = {"openid": user.openid, "phone": "13912345678"}
    if tamper == "other_app":
        request["watermark_appid"] = "wx_someone_else"
    sealed = _dev(emulator_url, "encrypted-phone", request)
    data = sealed["encryptedData"] if tamper == "other_app" else "bm90IHRoZSBkYXRh" * 4

    response = client.post(
        PHONE, json={"encrypted_data": data, "iv": sealed["iv"]}, headers=headers
    )

    assert response.status_code == 422
    assert response.json["code"] == "PHONE_DATA_INVALID"
    session.refresh(user)
    assert user.phone_sealed is None


def test_encrypted_data_from_before_the_last_login_no_longer_opens(
    client: FlaskClient,
    emulator_url: str,
    wechat_login_code: Callable[..., str],
    logged_in: tuple[User, dict[str, str]],
) -> None:
    user, headers = logged_in
    stale = _dev(emulator_url, "encrypted-phone", {"openid": user.openid, "phone": "13912345678"})
    # Logging in again (on another phone) rotates the session key on both sides.
    client.post("/api/v1/auth/wechat/login", json={"code": wechat_login_code(user.openid)})

    response = client.post(
        PHONE,
        json={"encrypted_data": stale["encryptedData"], "iv": stale["iv"]},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.json["code"] == "PHONE_DATA_INVALID"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "a", "encrypted_data": "b", "iv": "c"},
        {"encrypted_data": "b"},
        {"iv": "c"},
        {"code": "a", "iv": "c"},
    ],
    ids=["nothing", "both", "data-without-iv", "iv-alone", "code-and-iv"],
)
def test_exactly_one_binding_scheme_is_accepted(
    client: FlaskClient, logged_in: tuple[User, dict[str, str]], body: dict[str, str]
) -> None:
    _, headers = logged_in

    response = client.post(PHONE, json=body, headers=headers)

    assert response.status_code == 422
    assert response.json["code"] == "VALIDATION_FAILED"


def test_binding_a_phone_needs_a_login(client: FlaskClient) -> None:
    assert client.post(PHONE, json={"code": "x"}).status_code == 401


def test_no_response_of_a_whole_journey_reveals_the_session_key_or_personal_data(
    client: FlaskClient,
    session: Session,
    emulator_url: str,
    field_cipher: FieldCipher,
    wechat_login_code: Callable[..., str],
    valid_id_number: Callable[..., str],
) -> None:
    login = client.post("/api/v1/auth/wechat/login", json={"code": wechat_login_code()})
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    user = session.get(User, login.json["user"]["id"])
    assert user is not None and user.session_key_sealed is not None
    session_key = field_cipher.decrypt(user.session_key_sealed, context="users.session_key")
    sealed = _dev(emulator_url, "encrypted-phone", {"openid": user.openid, "phone": "13912345678"})
    id_number = valid_id_number()
    responses = [
        login,
        client.post(
            PHONE,
            json={"encrypted_data": sealed["encryptedData"], "iv": sealed["iv"]},
            headers=headers,
        ),
        client.post(
            "/api/v1/me/realname", json={"name": "黄志强", "id_number": id_number}, headers=headers
        ),
        client.get("/api/v1/me", headers=headers),
        client.post("/api/v1/auth/refresh", json={"refresh_token": login.json["refresh_token"]}),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200]
    for response in responses:
        text = response.get_data(as_text=True)
        for secret in (session_key, "session_key", user.openid, "13912345678", "黄志强", id_number):
            assert secret not in text

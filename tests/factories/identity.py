"""Factories for mini-program users, their tokens and WeChat login codes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy.orm import Session
from stdnum.cn import ric

from app.db import utcnow
from app.identity.access_tokens import TokenSettings
from app.identity.models import User
from app.identity.principals import principal_for
from app.identity.realname import verify_real_name
from app.identity.sessions import TokenPair, start_session
from app.identity.verifiers import ChecksumVerifier, IdentityCheck
from app.security.crypto import FieldCipher

_serial = itertools.count(1)


def id_number_for(
    birth_date: dt.date = dt.date(1990, 1, 1), *, area: str = "440113", order: int = 123
) -> str:
    """A well-formed 18-digit resident ID number, GB 11643 check digit included."""
    body = f"{area}{birth_date:%Y%m%d}{order:03d}"
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    check = (12 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11) % 11
    number = body + ("X" if check == 10 else str(check))
    assert ric.calc_check_digit(number) == number[-1]  # the factory agrees with stdnum
    return number


def app_token_settings(app: Flask) -> TokenSettings:
    """The access-token settings of the test app."""
    return TokenSettings.from_config(app.config)


@pytest.fixture
def field_cipher(app: Flask) -> FieldCipher:
    return app.extensions["cipher"]  # type: ignore[no-any-return]


@pytest.fixture
def valid_id_number() -> Callable[..., str]:
    """Make ID numbers: `valid_id_number(birth_date=..., order=...)`."""
    return id_number_for


@pytest.fixture
def create_user(session: Session) -> Callable[..., User]:
    """Insert a user; any User column may be given."""

    def create(**fields: Any) -> User:
        fields.setdefault("openid", f"o_test_user_{next(_serial):06d}")
        user = User(**fields)
        session.add(user)
        session.flush()
        return user

    return create


class _ServiceVerifier:
    """Stands for the real-name service's answer in set-up (tests of the service itself
    use the emulator over HTTP)."""

    method = "realname_service"

    def verify(self, name: str, id_number: str) -> IdentityCheck:
        return IdentityCheck(passed=True, method=self.method)


@pytest.fixture
def create_verified_user(
    session: Session, create_user: Callable[..., User], field_cipher: FieldCipher
) -> Callable[..., User]:
    """A user who passed real-name verification: `level="verified"` (the real-name service,
    the default), `"face"` (and a face verification just now) or `"checksum"` (format only)."""

    def create(
        name: str = "张三", id_number: str | None = None, *, level: str = "verified", **fields: Any
    ) -> User:
        user = create_user(**fields)
        number = id_number or id_number_for(order=next(_serial) % 1000)
        verifier = ChecksumVerifier() if level == "checksum" else _ServiceVerifier()
        now = utcnow()
        verify_real_name(
            session, field_cipher, verifier, user, name=name, id_number=number, now=now
        )
        if level == "face":
            user.face_verified_at = now
            session.flush()
        return user

    return create


@pytest.fixture
def start_login(app: Flask, session: Session) -> Callable[..., TokenPair]:
    """A fresh login (token pair) for a user or staff account, as the login endpoints make."""

    def start(kind: str, principal_id: int) -> TokenPair:
        return start_session(
            session,
            principal_for(session, kind, principal_id),
            settings=app_token_settings(app),
            refresh_ttl_seconds=app.config["REFRESH_TOKEN_TTL_SECONDS"],
            now=utcnow(),
        )

    return start


@pytest.fixture
def citizen_headers(start_login: Callable[..., TokenPair]) -> Callable[[User], dict[str, str]]:
    """`Authorization` headers carrying a valid access token for `user`."""

    def headers(user: User) -> dict[str, str]:
        pair = start_login("user", user.id)
        return {"Authorization": f"Bearer {pair.access_token}"}

    return headers


@pytest.fixture
def wechat_login_code(emulator_url: str) -> Callable[..., str]:
    """Do what wx.login does on the phone: ask the emulator for a fresh code."""

    def login_code(openid: str | None = None) -> str:
        body = {"openid": openid} if openid else {}
        response = requests.post(f"{emulator_url}/_emulator/login", json=body, timeout=5)
        response.raise_for_status()
        return str(response.json()["code"])

    return login_code

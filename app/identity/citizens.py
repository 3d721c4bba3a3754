"""Mini-program users: login with a wx.login code, phone number binding."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.db import insert_on_conflict
from app.errors import DomainError
from app.identity import errors
from app.identity.access_tokens import Principal
from app.identity.models import User
from app.identity.principals import citizen_principal
from app.security.crypto import CryptoError, FieldCipher
from wechat import errors as wx
from wechat.client import MiniProgramApi, PhoneInfo

log = logging.getLogger(__name__)

SESSION_KEY_CONTEXT = "users.session_key"
PHONE_CONTEXT = "users.phone"


def login_with_code(
    session: Session,
    wechat: MiniProgramApi,
    cipher: FieldCipher,
    code: str,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> User:
    """Exchange a wx.login code for the user's openid; create the user on first login."""
    try:
        login = wechat.code_to_session(code)
    except wx.WeChatError as exc:
        failure = _login_failure(exc)
        # The code itself is a credential for a few minutes: never put it in the audit log.
        record(
            session,
            "user.login_failed",
            actor=Actor("anonymous"),
            now=now,
            details={"reason": failure.code, "errcode": exc.errcode},
            request_id=request_id,
        )
        raise failure from exc

    # Kept (sealed) only to open the legacy encrypted phone data; WeChat rotates it per login.
    sealed_key = cipher.encrypt(login.session_key, context=SESSION_KEY_CONTEXT)
    user = _upsert_user(session, login.openid, login.unionid, sealed_key, now=now)
    if user is None:
        # The upsert leaves a disabled account as it was (no new session key, no login time).
        user = session.scalars(select(User).where(User.openid == login.openid)).one()
        record(
            session,
            "user.login_failed",
            actor=Actor("user", user.id),
            now=now,
            subject_type="user",
            subject_id=user.id,
            details={"reason": errors.UserDisabled.code},
            request_id=request_id,
        )
        raise errors.UserDisabled()
    record(
        session,
        "user.login",
        actor=Actor("user", user.id),
        now=now,
        subject_type="user",
        subject_id=user.id,
        request_id=request_id,
    )
    return user


def _upsert_user(
    session: Session, openid: str, unionid: str | None, sealed_key: str, *, now: dt.datetime
) -> User | None:
    """The user of `openid` after this login, created on the first: one statement.

    Two first logins of the same person can race; the unique openid makes the second an update
    of the first's row. None if the account is disabled (its row is left untouched).

    A Core statement on the session's connection returning only what the login answers with
    and puts in the access token, not an ORM entity load (that was a third of the login's
    CPU). The User returned is transient, never added to the session: it carries those
    columns only, for `login_principal` and the response; nothing is written through it.
    """
    row = (
        session.connection()
        .execute(
            _upsert_statement(session.get_bind().dialect.name),
            {
                "openid": openid,
                "unionid": unionid,
                "session_key_sealed": sealed_key,
                "last_login_at": now,
            },
        )
        .one_or_none()
    )
    if row is None:
        return None
    # The statement bypassed the identity map: a copy of this user the session already holds
    # (one session shared across calls) would keep the old session key; it is read again.
    held = session.identity_map.get(session.identity_key(User, row.id))
    if held is not None:
        session.expire(held)
    return User(
        id=row.id,
        openid=openid,
        disabled=False,
        phone_sealed=row.phone_sealed,
        realname_verified_at=row.realname_verified_at,
        realname_method=row.realname_method,
        face_verified_at=row.face_verified_at,
    )


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """The login upsert, built once per dialect; its values are bound per call."""
    users = User.__table__.c
    insert = insert_on_conflict(dialect)
    statement = insert(User.__table__).values(
        openid=bindparam("openid"),
        unionid=bindparam("unionid"),
        session_key_sealed=bindparam("session_key_sealed"),
        last_login_at=bindparam("last_login_at"),
        disabled=False,
    )
    return statement.on_conflict_do_update(
        index_elements=[users.openid],
        set_={
            "session_key_sealed": statement.excluded.session_key_sealed,
            "last_login_at": statement.excluded.last_login_at,
            # A login without a unionid keeps the one WeChat gave before.
            "unionid": func.coalesce(statement.excluded.unionid, users.unionid),
        },
        where=users.disabled.is_(False),
    ).returning(
        users.id,
        users.phone_sealed,
        users.realname_verified_at,
        users.realname_method,
        users.face_verified_at,
    )


def login_principal(user: User) -> Principal:
    """The principal a citizen's login token is issued for, from the login's own row: the
    upsert returned every column it needs and refuses disabled accounts itself, so the user
    is not read again as `principal_for` would."""
    return citizen_principal(user)


def _login_failure(exc: wx.WeChatError) -> DomainError:
    if isinstance(exc, wx.CodeUsed):
        return errors.WeChatCodeUsed()
    if isinstance(exc, wx.InvalidCode):
        return errors.WeChatCodeInvalid()
    # RateLimited, SystemBusy, TransportError (after the client's own retries), and errors
    # of our configuration (bad secret): the user can do nothing but try again later.
    log.warning("wechat login failed", extra={"wechat_error": type(exc).__name__})
    return errors.WeChatUnavailable()


def bind_phone_by_code(
    session: Session,
    wechat: MiniProgramApi,
    cipher: FieldCipher,
    user: User,
    code: str,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> User:
    """Bind the phone number behind a getPhoneNumber code to `user`."""
    try:
        phone = wechat.get_phone_number(code)
    except wx.CodeUsed as exc:
        raise errors.PhoneCodeUsed() from exc
    except wx.InvalidCode as exc:
        raise errors.PhoneCodeInvalid() from exc
    except wx.WeChatError as exc:
        log.warning("wechat phone number failed", extra={"wechat_error": type(exc).__name__})
        raise errors.WeChatUnavailable() from exc
    return _bind_phone(session, cipher, user, phone, method="code", now=now, request_id=request_id)


def bind_phone_by_encrypted_data(
    session: Session,
    wechat: MiniProgramApi,
    cipher: FieldCipher,
    user: User,
    encrypted_data: str,
    iv: str,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> User:
    """Bind a phone number from legacy encryptedData, opened with the stored session_key."""
    if user.session_key_sealed is None:
        raise errors.PhoneDataInvalid(reason="no_session_key")
    try:
        session_key = cipher.decrypt(user.session_key_sealed, context=SESSION_KEY_CONTEXT)
    except CryptoError as exc:
        raise errors.PhoneDataInvalid(reason="no_session_key") from exc
    try:
        phone = wechat.decrypt_phone_data(session_key, encrypted_data, iv)
    except wx.PhoneDataInvalid as exc:
        raise errors.PhoneDataInvalid() from exc
    return _bind_phone(
        session, cipher, user, phone, method="encrypted_data", now=now, request_id=request_id
    )


def _bind_phone(
    session: Session,
    cipher: FieldCipher,
    user: User,
    phone: PhoneInfo,
    *,
    method: str,
    now: dt.datetime,
    request_id: str | None,
) -> User:
    # `phone_number` carries the country code for numbers outside mainland China only.
    number = phone.phone_number or phone.pure_phone_number
    user.phone_sealed = cipher.encrypt(number, context=PHONE_CONTEXT)
    user.phone_index = cipher.blind_index(number, context=PHONE_CONTEXT)
    user.phone_bound_at = now
    session.flush()
    record(
        session,
        "user.phone_bound",
        actor=Actor("user", user.id),
        now=now,
        subject_type="user",
        subject_id=user.id,
        details={"method": method},
        request_id=request_id,
    )
    return user


def phone_of(cipher: FieldCipher, user: User) -> str | None:
    """The user's phone number in clear, or None if none is bound."""
    if user.phone_sealed is None:
        return None
    return cipher.decrypt(user.phone_sealed, context=PHONE_CONTEXT)

"""Mini-program users: login with a wx.login code, phone number binding."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.db import insert_on_conflict
from app.errors import DomainError
from app.identity import errors
from app.identity.models import User
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
    of the first's row. None if the account is disabled (its row is left untouched)."""
    users = User.__table__.c
    insert = insert_on_conflict(session.get_bind().dialect.name)
    statement = (
        insert(User)
        .values(
            openid=openid,
            unionid=unionid,
            session_key_sealed=sealed_key,
            last_login_at=now,
            disabled=False,
        )
        .on_conflict_do_update(
            index_elements=[users.openid],
            set_={
                "session_key_sealed": sealed_key,
                "last_login_at": now,
                # A login without a unionid keeps the one WeChat gave before.
                "unionid": func.coalesce(unionid, users.unionid),
            },
            where=users.disabled.is_(False),
        )
        .returning(User)
    )
    return session.scalars(statement, execution_options={"populate_existing": True}).one_or_none()


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

"""Scan login to the staff console, and linking the WeChat account that confirms it.

The console shows a QR holding a random one-time code. A staff member scans it in the
mini-program, which sends the code with the citizen's own token: for a LOGIN code the account
linked to that WeChat user is the one logging in; for a LINK code (shown inside a logged-in
console) that WeChat user becomes the account's. The browser that asked for the code polls by
the challenge id it holds in its session cookie; a confirmed LOGIN is consumed by that poll
exactly once. Every confirmation and refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.db import affected_rows
from app.identity import errors
from app.identity.assurance import require_level
from app.identity.models import (
    ConsoleChallenge,
    ConsoleChallengePurpose,
    StaffAccount,
    User,
)
from app.security.crypto import hash_token

# What a QR carries: the mini-program recognises the prefix and opens its confirm page.
QR_PREFIX = "yhb-console:"

PENDING = "pending"
CONFIRMED = "confirmed"
EXPIRED = "expired"
CONSUMED = "consumed"


def create_challenge(
    session: Session,
    purpose: ConsoleChallengePurpose,
    *,
    now: dt.datetime,
    ttl_seconds: int,
    staff_id: int | None = None,
) -> tuple[ConsoleChallenge, str]:
    """A new challenge and its code (shown once, in the QR; only its hash is kept)."""
    code = secrets.token_urlsafe(24)
    challenge = ConsoleChallenge(
        id=secrets.token_hex(16),
        purpose=purpose,
        code_hash=hash_token(code),
        staff_id=staff_id,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl_seconds),
    )
    session.add(challenge)
    session.flush()
    return challenge, code


def qr_payload(code: str) -> str:
    return QR_PREFIX + code


def _open_challenge(session: Session, code: str, *, now: dt.datetime) -> ConsoleChallenge:
    raw = code.removeprefix(QR_PREFIX).strip()
    challenge = session.scalars(
        select(ConsoleChallenge).where(ConsoleChallenge.code_hash == hash_token(raw))
    ).one_or_none()
    if challenge is None:
        raise errors.ScanCodeUnknown()
    if challenge.confirmed_at is not None or challenge.consumed_at is not None:
        raise errors.ScanCodeUsed()
    if challenge.expires_at <= now:
        raise errors.ScanCodeExpired()
    return challenge


def _refuse(
    session: Session,
    user: User,
    reason: str,
    *,
    now: dt.datetime,
    request_id: str | None,
    staff_id: int | None = None,
) -> None:
    record(
        session,
        "staff.scan_refused",
        actor=Actor("user", user.id),
        now=now,
        subject_type="staff" if staff_id else None,
        subject_id=staff_id,
        details={"reason": reason},
        request_id=request_id,
    )
    session.flush()


def confirm(
    session: Session,
    code: str,
    user: User,
    *,
    now: dt.datetime,
    face_recent_seconds: int,
    request_id: str | None = None,
) -> ConsoleChallenge:
    """The mini-program's confirmation of a scanned code by `user`.

    Refusals are flushed (audit entries) before raising: the caller commits them.
    """
    challenge = _open_challenge(session, code, now=now)
    action = (
        "staff.scan_login"
        if challenge.purpose == ConsoleChallengePurpose.LOGIN
        else "staff.link_wechat"
    )
    require_level(
        session,
        user,
        action,
        now=now,
        face_recent_seconds=face_recent_seconds,
        request_id=request_id,
    )
    if challenge.purpose == ConsoleChallengePurpose.LOGIN:
        account = session.scalars(
            select(StaffAccount).where(StaffAccount.wechat_user_id == user.id)
        ).one_or_none()
        if account is None or not account.active:
            _refuse(
                session,
                user,
                "not_linked" if account is None else "inactive",
                now=now,
                request_id=request_id,
                staff_id=account.id if account else None,
            )
            raise errors.WeChatNotLinked()
        challenge.staff_id = account.id
        action_done = "staff.scan_login_confirmed"
    else:
        account = session.get(StaffAccount, challenge.staff_id)
        if account is None or not account.active:
            raise errors.ScanCodeUnknown()
        holder = session.scalars(
            select(StaffAccount).where(StaffAccount.wechat_user_id == user.id)
        ).one_or_none()
        if holder is not None and holder.id != account.id:
            _refuse(
                session,
                user,
                "linked_elsewhere",
                now=now,
                request_id=request_id,
                staff_id=account.id,
            )
            raise errors.WeChatLinkedElsewhere()
        account.wechat_user_id = user.id
        account.wechat_linked_at = now
        action_done = "staff.wechat_linked"
    challenge.confirmed_at = now
    record(
        session,
        action_done,
        actor=Actor("user", user.id),
        now=now,
        subject_type="staff",
        subject_id=account.id,
        request_id=request_id,
    )
    session.flush()
    return challenge


def status(session: Session, challenge_id: str, *, now: dt.datetime) -> str:
    """PENDING, CONFIRMED, EXPIRED or CONSUMED (an unknown id reads as EXPIRED)."""
    challenge = session.get(ConsoleChallenge, challenge_id)
    if challenge is None:
        return EXPIRED
    if challenge.consumed_at is not None:
        return CONSUMED
    if challenge.confirmed_at is not None:
        return CONFIRMED
    return EXPIRED if challenge.expires_at <= now else PENDING


def consume_login(session: Session, challenge_id: str, *, now: dt.datetime) -> int | None:
    """The staff id a confirmed LOGIN challenge logs in, exactly once; None otherwise."""
    result = session.execute(
        update(ConsoleChallenge)
        .where(
            ConsoleChallenge.id == challenge_id,
            ConsoleChallenge.purpose == ConsoleChallengePurpose.LOGIN,
            ConsoleChallenge.confirmed_at.is_not(None),
            ConsoleChallenge.consumed_at.is_(None),
        )
        .values(consumed_at=now)
    )
    if affected_rows(result) != 1:
        return None
    challenge = session.get(ConsoleChallenge, challenge_id)
    return challenge.staff_id if challenge else None


def unlink(session: Session, account: StaffAccount, *, now: dt.datetime, actor: Actor) -> None:
    """Forget the WeChat account linked to `account` (scan login stops working)."""
    if account.wechat_user_id is None:
        return
    account.wechat_user_id = None
    account.wechat_linked_at = None
    record(
        session,
        "staff.wechat_unlinked",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
    )
    session.flush()

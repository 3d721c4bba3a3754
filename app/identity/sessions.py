"""Login sessions of citizens and staff: a short-lived JWT plus a rotating refresh token.

Each login starts a `LoginFamily`. Its refresh tokens are opaque, stored only as SHA-256, and
used once: a refresh marks the presented token used and issues the next one in the same family.
A token presented a second time means someone kept a copy, so the whole family is revoked, and
every access token of the family dies with it (`is_family_active`, or the same column in a
view's first statement, is asked on each request).

One exception, the reuse grace: a mini-program whose access token expired fires several
requests at once, each refreshing with the same token. For `reuse_grace_seconds` after a token
was spent, presenting it again answers with the same successor refresh token (and a fresh
access token) instead of revoking, as long as that successor is still unused. Presenting an
older token, or the previous one after its successor was itself rotated, or presenting it
after the grace, still revokes the family.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.db import affected_rows, built_once
from app.identity.access_tokens import Principal, TokenSettings, issue_access_token
from app.identity.errors import RefreshTokenExpired, RefreshTokenInvalid, RefreshTokenReused
from app.identity.models import LoginFamily, PrincipalKind, RefreshToken
from app.identity.principals import principal_for
from app.security.crypto import hash_token

REUSE_DETECTED = "reuse_detected"

# Why a spent token was refused (the audit entry's `reason`).
REUSED = "reused"  # presented again with no grace configured
AFTER_GRACE = "after_grace"  # the previous token, presented after the grace
SUPERSEDED = "superseded"  # a token whose successor was rotated in turn (older tokens too)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: dt.datetime
    refresh_token: str
    refresh_expires_at: dt.datetime
    family_id: str


def open_family(session: Session, kind: str, principal_id: int, *, now: dt.datetime) -> LoginFamily:
    """A new login family with no tokens yet: the API issues a token pair in it, the staff
    console keeps its id in the session cookie (so logout and deactivation end both alike)."""
    family = LoginFamily(
        id=secrets.token_hex(16),
        principal_kind=PrincipalKind(kind),
        principal_id=principal_id,
        created_at=now,
    )
    session.add(family)
    session.flush()
    return family


@dataclass(frozen=True)
class NewLogin:
    """A login family and its first refresh token, made before they are written (by
    `start_session`, or by a statement that writes them with the login's other rows)."""

    family_id: str
    refresh_token: str
    issued_at: dt.datetime
    refresh_expires_at: dt.datetime

    @property
    def token_hash(self) -> str:
        return hash_token(self.refresh_token)


def new_login(*, refresh_ttl_seconds: int, now: dt.datetime) -> NewLogin:
    return NewLogin(
        family_id=secrets.token_hex(16),
        refresh_token=secrets.token_urlsafe(32),
        issued_at=now,
        refresh_expires_at=now + dt.timedelta(seconds=refresh_ttl_seconds),
    )


def start_session(
    session: Session,
    principal: Principal,
    *,
    settings: TokenSettings,
    refresh_ttl_seconds: int,
    now: dt.datetime,
) -> TokenPair:
    """Open a new login family for `principal` and issue its first token pair."""
    login = new_login(refresh_ttl_seconds=refresh_ttl_seconds, now=now)
    # A Core INSERT on the session's connection, not an ORM object: no unit-of-work flush,
    # and nothing later in the request reads the family back from the identity map.
    session.connection().execute(
        _insert_family_statement(),
        {
            "id": login.family_id,
            "principal_kind": PrincipalKind(principal.kind),
            "principal_id": principal.id,
            "created_at": now,
        },
    )
    return _issue_pair(
        session,
        principal,
        login.family_id,
        settings=settings,
        ttl=refresh_ttl_seconds,
        now=now,
        raw=login.refresh_token,
    )


def first_pair(
    principal: Principal, login: NewLogin, *, settings: TokenSettings, now: dt.datetime
) -> TokenPair:
    """The token pair of a `NewLogin` its caller has written: its refresh token and a new
    access token for `principal` in its family."""
    return _pair(
        principal,
        login.family_id,
        login.refresh_token,
        login.refresh_expires_at,
        settings=settings,
        now=now,
    )


def refresh_session(
    session: Session,
    refresh_token: str,
    *,
    settings: TokenSettings,
    refresh_ttl_seconds: int,
    now: dt.datetime,
    reuse_grace_seconds: int = 0,
    request_id: str | None = None,
) -> TokenPair:
    """Exchange a refresh token for a new pair in the same family (the old one is spent).

    Within `reuse_grace_seconds` of its rotation the previous token gets the same successor
    again (see the module docstring). On any other reuse this flushes the family's revocation
    and an audit entry, then raises `RefreshTokenReused` (a `KeepsWrites` error): the caller
    must commit before the error propagates, or the revocation would be rolled back with the
    failed request and the thief's copy would keep working.
    """
    token = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
    ).one_or_none()
    if token is None:
        raise RefreshTokenInvalid()
    family = token.family
    if family.revoked_at is not None:
        raise RefreshTokenInvalid("登录已失效，请重新登录")
    if token.used_at is not None:
        return _replay_successor(
            session,
            family,
            token,
            refresh_token,
            settings=settings,
            grace_seconds=reuse_grace_seconds,
            now=now,
            request_id=request_id,
        )
    if token.expires_at <= now:
        raise RefreshTokenExpired()
    # Roles are read again: a staff member's grants may have changed since login, and a
    # disabled account must not refresh its way past the change. Read before
    # the token is spent, so a refused refresh leaves it as it was.
    principal = principal_for(session, family.principal_kind.value, family.principal_id)
    # The guard makes the check and the claim one statement: of two refreshes racing with the
    # same token, the second waits on the first's row lock (PostgreSQL) or write lock (SQLite),
    # then matches no row. It then answers as a repeat within the grace would: the same
    # successor if the winner's claim is recent and its successor unused, otherwise revocation
    # (from here a race with a thief and a reuse by a thief look the same).
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(claimed) != 1:
        # Read again: the statement above saw the winner's commit, this session's copy did not.
        session.refresh(token)
        return _replay_successor(
            session,
            family,
            token,
            refresh_token,
            settings=settings,
            grace_seconds=reuse_grace_seconds,
            now=now,
            request_id=request_id,
        )
    return _issue_pair(
        session,
        principal,
        family.id,
        settings=settings,
        ttl=refresh_ttl_seconds,
        now=now,
        raw=successor_token(settings.secret, refresh_token),
    )


def successor_token(secret: str, spent_token: str) -> str:
    """The refresh token that replaces `spent_token`: a keyed hash of it.

    The grace must hand out the same successor again, so its raw value has to be recoverable
    for a few seconds. Deriving it (HMAC-SHA256 keyed with the app's secret, the key that
    signs access tokens already) beats keeping it encrypted on the spent row: nothing secret
    is stored, nothing has to be wiped when the grace ends, no column is added, and whoever
    holds the spent token learns nothing without the key. Only first tokens of a login are
    random; each successor is as unguessable as its predecessor.
    """
    digest = hmac.new(
        secret.encode(), b"refresh-successor:v1\x00" + spent_token.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _replay_successor(
    session: Session,
    family: LoginFamily,
    token: RefreshToken,
    presented: str,
    *,
    settings: TokenSettings,
    grace_seconds: int,
    now: dt.datetime,
    request_id: str | None,
) -> TokenPair:
    """The pair a spent token got, if the grace allows it; otherwise revoke the family."""
    if token.used_at is None:  # not spent after all: refuse rather than guess
        raise RefreshTokenInvalid()
    if grace_seconds <= 0:
        _revoke_for_reuse(session, family, token, now=now, reason=REUSED, request_id=request_id)
    if now - token.used_at > dt.timedelta(seconds=grace_seconds):
        _revoke_for_reuse(
            session, family, token, now=now, reason=AFTER_GRACE, request_id=request_id
        )
    raw = successor_token(settings.secret, presented)
    # Locked, so a rotation of the successor itself waits for this answer or is seen by it.
    successor = session.scalars(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_token(raw), RefreshToken.family_id == family.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    # No successor under this derivation (a token spent before it existed, or the secret
    # changed since): nothing to hand out again.
    if successor is None or successor.used_at is not None or successor.expires_at <= now:
        _revoke_for_reuse(session, family, token, now=now, reason=SUPERSEDED, request_id=request_id)
    principal = principal_for(session, family.principal_kind.value, family.principal_id)
    access, access_expires = issue_access_token(
        settings, dataclasses.replace(principal, family_id=family.id, jti=""), now=now
    )
    return TokenPair(
        access_token=access,
        access_expires_at=access_expires,
        refresh_token=raw,
        refresh_expires_at=successor.expires_at,
        family_id=family.id,
    )


def end_session(
    session: Session,
    family_id: str,
    *,
    now: dt.datetime,
    reason: str = "logout",
    request_id: str | None = None,
) -> bool:
    """Revoke a login family (its refresh tokens and access tokens); False if already ended."""
    revoked = _revoke(session, family_id, now=now, reason=reason)
    if revoked:
        family = session.get(LoginFamily, family_id)
        if family is not None:
            record(
                session,
                "session.ended",
                actor=Actor(family.principal_kind.value, family.principal_id),
                now=now,
                subject_type="login_family",
                subject_id=family_id,
                details={"reason": reason},
                request_id=request_id,
            )
    return revoked


def end_all_sessions(
    session: Session,
    kind: str,
    principal_id: int,
    *,
    now: dt.datetime,
    reason: str,
    keep: str | None = None,
) -> int:
    """Revoke every live login family of a principal but `keep` (password change, roles
    changed, account disabled); returns how many. The caller audits the cause."""
    statement = (
        update(LoginFamily)
        .where(
            LoginFamily.principal_kind == PrincipalKind(kind),
            LoginFamily.principal_id == principal_id,
            LoginFamily.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    if keep:
        statement = statement.where(LoginFamily.id != keep)
    return affected_rows(session.execute(statement))


def family_active_column() -> Any:
    """Whether the login family bound as `family_id` exists and is not revoked: a column
    (one primary-key lookup) for a statement of its own (`is_family_active`) or for one a view
    makes anyway (`blueprints.authz.citizen_required_family_in_view`)."""
    families = LoginFamily.__table__
    return exists().where(families.c.id == bindparam("family_id"), families.c.revoked_at.is_(None))


@built_once
def _family_active_statement() -> Any:
    return select(family_active_column())


def is_family_active(session: Session, family_id: str) -> bool:
    """True if the login family exists and is not revoked (one primary-key lookup)."""
    # Asked of the database on every request, never cached: a revocation (logout, refresh
    # reuse, a disabled account) ends the family's access tokens at once. A Core statement
    # built once, on the session's connection and transaction: it never answers from a stale
    # identity map, and skips the ORM's per-statement work (about half the check's CPU).
    # Nothing pending needs flushing first: families are revoked by UPDATE statements only.
    active = session.connection().execute(_family_active_statement(), {"family_id": family_id})
    return bool(active.scalar())


@built_once
def _insert_family_statement() -> Any:
    return insert(LoginFamily)


@built_once
def _insert_token_statement() -> Any:
    return insert(RefreshToken)


def _issue_pair(
    session: Session,
    principal: Principal,
    family_id: str,
    *,
    settings: TokenSettings,
    ttl: int,
    now: dt.datetime,
    raw: str | None = None,
) -> TokenPair:
    raw = raw or secrets.token_urlsafe(32)
    expires = now + dt.timedelta(seconds=ttl)
    # Core, like the family's INSERT: the refresh token is never read back in this request
    # (a refresh finds it by hash in a later one). The caller's pending ORM objects, the
    # login's audit entry among them, go to the database in the flush that commits.
    session.connection().execute(
        _insert_token_statement(),
        {
            "family_id": family_id,
            "token_hash": hash_token(raw),
            "issued_at": now,
            "expires_at": expires,
        },
    )
    return _pair(principal, family_id, raw, expires, settings=settings, now=now)


def _pair(
    principal: Principal,
    family_id: str,
    refresh_token: str,
    refresh_expires_at: dt.datetime,
    *,
    settings: TokenSettings,
    now: dt.datetime,
) -> TokenPair:
    access, access_expires = issue_access_token(
        settings, dataclasses.replace(principal, family_id=family_id, jti=""), now=now
    )
    return TokenPair(
        access_token=access,
        access_expires_at=access_expires,
        refresh_token=refresh_token,
        refresh_expires_at=refresh_expires_at,
        family_id=family_id,
    )


def _revoke(session: Session, family_id: str, *, now: dt.datetime, reason: str) -> bool:
    # Guarded so that concurrent revocations keep the first reason and audit once.
    result = session.execute(
        update(LoginFamily)
        .where(LoginFamily.id == family_id, LoginFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1


def _revoke_for_reuse(
    session: Session,
    family: LoginFamily,
    token: RefreshToken,
    *,
    now: dt.datetime,
    reason: str,
    request_id: str | None,
) -> NoReturn:
    if _revoke(session, family.id, now=now, reason=REUSE_DETECTED):
        record(
            session,
            "session.refresh_reuse_detected",
            actor=Actor(family.principal_kind.value, family.principal_id),
            now=now,
            subject_type="login_family",
            subject_id=family.id,
            details={"refresh_token_id": token.id, "reason": reason},
            request_id=request_id,
        )
    raise RefreshTokenReused()

"""What every login endpoint shares: its rate limit, the token-pair body, keeping the writes
of a refused attempt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from app.identity import sessions
from app.identity.errors import KeepsWrites
from app.identity.principals import principal_for
from app.identity.sessions import TokenPair
from blueprints.authz import token_settings


def login_rate() -> str:
    """The per-client limit on login attempts (Flask-Limiter reads it per request)."""
    return str(current_app.config["RATELIMIT_LOGIN"])


@contextmanager
def keeping_writes(session: Session) -> Iterator[None]:
    """Commit what a failing service chose to keep (failed-login counts, audit entries,
    revocations), then let the error reach the client; rolled back with the failed request,
    lockout and reuse detection would never take effect."""
    try:
        yield
    except KeepsWrites:
        session.commit()
        raise


def start_login(session: Session, kind: str, principal_id: int, *, now: dt.datetime) -> TokenPair:
    """A new login family for a user or staff account, with the app's token settings."""
    return sessions.start_session(
        session,
        principal_for(session, kind, principal_id),
        settings=token_settings(),
        refresh_ttl_seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"],
        now=now,
    )


def token_pair_body(pair: TokenPair, now: dt.datetime) -> dict[str, Any]:
    """The JSON every login and refresh answers with."""
    return {
        "access_token": pair.access_token,
        "token_type": "Bearer",  # nosec B105  # the OAuth token_type name, not a password
        "expires_in": max(int((pair.access_expires_at - now).total_seconds()), 0),
        "refresh_token": pair.refresh_token,
        "refresh_expires_in": max(int((pair.refresh_expires_at - now).total_seconds()), 0),
    }

"""Many signed-in people at once, for demo data, benchmarks and the production-topology tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.identity.access_tokens import TokenSettings
from app.identity.models import User
from app.identity.principals import principal_for
from app.identity.sessions import start_session


def signed_in(
    session: Session,
    kind: str,
    principal_ids: Iterable[int],
    *,
    settings: TokenSettings,
    now: dt.datetime,
    refresh_ttl_seconds: int = 3600,
) -> list[str]:
    """An access token for each principal ("user" or "staff"), each in a login family of its
    own, as if each had logged in."""
    return [
        start_session(
            session,
            principal_for(session, kind, principal_id),
            settings=settings,
            refresh_ttl_seconds=refresh_ttl_seconds,
            now=now,
        ).access_token
        for principal_id in principal_ids
    ]


def new_citizens(
    session: Session, openid_prefix: str, count: int, *, settings: TokenSettings, now: dt.datetime
) -> tuple[list[User], list[str]]:
    """`count` new mini-program users (`<prefix>_<n>` openids), signed in; flushed, not
    committed."""
    people = [User(openid=f"{openid_prefix}_{n}") for n in range(count)]
    session.add_all(people)
    session.flush()
    return people, signed_in(session, "user", (p.id for p in people), settings=settings, now=now)

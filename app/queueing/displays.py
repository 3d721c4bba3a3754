"""Hall displays: the entrance screen's own revocable token, instead of a clerk's login.

A hall manager registers a screen and gets its token once; the screen sends it as
`Authorization: Display <token>` to read what a screen shows (the rotating entrance code).
Registering and revoking are audited; each use notes when the screen was last seen, at most
once every few minutes so a screen polling every few seconds does not write each time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.audit.service import record as audit
from app.errors import TokenInvalid
from app.queueing.errors import HallDisplayNotFound
from app.queueing.models import HallDisplay

TOKEN_PREFIX = "hd_"  # nosec B105  # a token prefix, not a password
SEEN_EVERY = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedDisplay:
    display: HallDisplay
    token: str  # shown once, when the screen is registered


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register(
    session: Session, hall_id: int, *, name: str, staff_id: int | None, now: dt.datetime
) -> IssuedDisplay:
    """A new screen for the hall, with its token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    display = HallDisplay(
        hall_id=hall_id, name=name, token_hash=_hash(token), issued_by=staff_id, created_at=now
    )
    session.add(display)
    session.flush()
    audit(
        session,
        "hall_display.registered",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="hall_display",
        subject_id=display.id,
        details={"hall_id": hall_id, "name": name},
    )
    return IssuedDisplay(display, token)


def list_for_hall(session: Session, hall_id: int) -> list[HallDisplay]:
    """The hall's screens, live and revoked, newest first."""
    return list(
        session.scalars(
            select(HallDisplay)
            .where(HallDisplay.hall_id == hall_id)
            .order_by(HallDisplay.id.desc())
        )
    )


def get_for_hall(session: Session, hall_id: int, display_id: int) -> HallDisplay:
    display = session.get(HallDisplay, display_id)
    if display is None or display.hall_id != hall_id:
        raise HallDisplayNotFound()
    return display


def revoke(
    session: Session, display: HallDisplay, *, staff_id: int | None, now: dt.datetime
) -> HallDisplay:
    """End a screen's token at once (a stolen or replaced screen); revoking twice is a no-op."""
    if display.revoked_at is None:
        display.revoked_at = now
        audit(
            session,
            "hall_display.revoked",
            actor=Actor("staff", staff_id),
            now=now,
            subject_type="hall_display",
            subject_id=display.id,
            details={"hall_id": display.hall_id},
        )
        session.flush()
    return display


def authenticate(session: Session, token: str, *, now: dt.datetime) -> HallDisplay:
    """The live screen holding this token; TokenInvalid for an unknown or revoked one.

    May note the time of use (an UPDATE): the caller commits.
    """
    if not token.startswith(TOKEN_PREFIX):
        raise TokenInvalid("大厅屏凭证无效")
    display = session.scalars(
        select(HallDisplay).where(HallDisplay.token_hash == _hash(token))
    ).first()
    if display is None or display.revoked_at is not None:
        raise TokenInvalid("大厅屏凭证无效或已停用")
    if display.last_used_at is None or now - display.last_used_at >= SEEN_EVERY:
        session.execute(
            update(HallDisplay)
            .where(
                HallDisplay.id == display.id,
                or_(
                    HallDisplay.last_used_at.is_(None),
                    HallDisplay.last_used_at <= now - SEEN_EVERY,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return display

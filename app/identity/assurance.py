"""How sure we are that a citizen is who they say (身份核验等级), and what each level allows.

Levels, lowest first:
- NONE: no real name given.
- CHECKSUM: a name and an ID number that pass the check digit: development only, since anyone
  can type somebody else's.
- VERIFIED: the real-name service confirmed that the name and ID number belong together.
- FACE: as VERIFIED, and the person's face matched the ID photo in a liveness check within
  `FACE_RECENT_SECONDS`: the one level that shows the person holding the phone is that person.

Actions that act for an enterprise, move money or sign ask for a level (`REQUIRED`); a refusal
is audited. The level is read from the account at the moment of the action, not from the
access token (which shows it for the client's benefit but may be minutes old).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.identity import errors
from app.identity.models import User

# FACE_RECENT_SECONDS' default: long enough to finish the step that asked for the face.
DEFAULT_FACE_RECENT_SECONDS = 600

# realname_method values the real-name service writes; anything else is a format check only.
SERVICE_METHODS = frozenset({"realname_service"})


class AssuranceLevel(enum.IntEnum):
    NONE = 0
    CHECKSUM = 1
    VERIFIED = 2
    FACE = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    AssuranceLevel.NONE: "未实名",
    AssuranceLevel.CHECKSUM: "仅格式校验",
    AssuranceLevel.VERIFIED: "实名核验",
    AssuranceLevel.FACE: "人脸核验",
}

# What each action needs. Binding as legal representative and the account subsidies are paid
# into need the face: a name and an ID number are often leaked together, a live face is not.
REQUIRED: dict[str, AssuranceLevel] = {
    "enterprise.bind_legal_representative": AssuranceLevel.FACE,
    "enterprise.set_receiving_account": AssuranceLevel.FACE,
    "enterprise.authorise_agent": AssuranceLevel.VERIFIED,
    "enterprise.accept_authorisation": AssuranceLevel.VERIFIED,
    "document.sign": AssuranceLevel.VERIFIED,
    # A permit is issued in the applicant's (or their enterprise's) name.
    "application.submit": AssuranceLevel.VERIFIED,
    # Signing an application form or a commitment letter in one's own name: a live face just
    # now (the fresh confirmation before a signature).
    "application.sign": AssuranceLevel.FACE,
    # A linked WeChat account logs its staff member into the console: a named, verified person.
    "staff.link_wechat": AssuranceLevel.VERIFIED,
    "staff.scan_login": AssuranceLevel.VERIFIED,
}


def lasting_level(user: User) -> AssuranceLevel:
    """The level that does not wear off: NONE, CHECKSUM or VERIFIED."""
    if not user.is_realname_verified:
        return AssuranceLevel.NONE
    if user.realname_method not in SERVICE_METHODS:
        return AssuranceLevel.CHECKSUM
    return AssuranceLevel.VERIFIED


def level_of(user: User, *, now: dt.datetime, face_recent_seconds: int) -> AssuranceLevel:
    """The level `user` holds at `now`."""
    lasting = lasting_level(user)
    if lasting < AssuranceLevel.VERIFIED:
        return lasting
    face_at = user.face_verified_at
    if face_at is not None and now - face_at <= dt.timedelta(seconds=face_recent_seconds):
        return AssuranceLevel.FACE
    return AssuranceLevel.VERIFIED


def require_level(
    session: Session,
    user: User,
    action: str,
    *,
    now: dt.datetime,
    face_recent_seconds: int = DEFAULT_FACE_RECENT_SECONDS,
    request_id: str | None = None,
) -> AssuranceLevel:
    """Refuse (403 IDENTITY_LEVEL_TOO_LOW, audited) unless `user` holds the level `action`
    needs; returns the level held."""
    needed = REQUIRED[action]
    held = level_of(user, now=now, face_recent_seconds=face_recent_seconds)
    if held >= needed:
        return held
    record(
        session,
        "identity.level_refused",
        actor=Actor("user", user.id),
        now=now,
        subject_type="user",
        subject_id=user.id,
        details={"action": action, "needed": needed.name.lower(), "held": held.name.lower()},
        request_id=request_id,
    )
    session.flush()
    raise errors.IdentityLevelTooLow(
        needed=needed.name.lower(), held=held.name.lower(), needed_label=needed.label
    )

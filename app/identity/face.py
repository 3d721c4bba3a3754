"""Face verification (人脸核验): the mini-program's liveness check, confirmed server-side.

The page runs the face SDK, which hands it a one-time verify token; the server redeems the token
with the identity service and accepts the result only if it names the same person the account
was verified as. Only then does the account hold the FACE level, for `FACE_RECENT_SECONDS`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.identity import errors
from app.identity.models import User
from app.identity.realname import (
    ID_NUMBER_CONTEXT,
    normalize_id_number,
    normalize_name,
    real_name_of,
)
from app.security.crypto import FieldCipher
from verification.errors import VerificationError
from verification.identity import FaceVerifier


def confirm_face(
    session: Session,
    cipher: FieldCipher,
    face: FaceVerifier,
    user: User,
    verify_token: str,
    *,
    now: dt.datetime,
    max_age_seconds: int,
    request_id: str | None = None,
) -> User:
    """Record a passed face verification of `user`; refused (audited) otherwise."""
    if not user.is_realname_verified:
        raise errors.RealNameRequired()
    try:
        result = face.face_result(verify_token)
    except VerificationError as exc:
        raise errors.IdentityServiceUnavailable() from exc

    reason = result.reason if not result.passed else None
    if reason is None:
        reason = _mismatch(cipher, user, result.name, result.id_number, now=now)
    if reason is None and not now - dt.timedelta(seconds=max_age_seconds) <= result.checked_at:
        reason = "stale"
    if reason is not None:
        record(
            session,
            "user.face_rejected",
            actor=Actor("user", user.id),
            now=now,
            subject_type="user",
            subject_id=user.id,
            details={"reason": reason},
            request_id=request_id,
        )
        session.flush()
        raise errors.FaceVerificationFailed(reason=reason)

    user.face_verified_at = result.checked_at
    record(
        session,
        "user.face_verified",
        actor=Actor("user", user.id),
        now=now,
        subject_type="user",
        subject_id=user.id,
        details={},
        request_id=request_id,
    )
    session.flush()
    return user


def _mismatch(
    cipher: FieldCipher, user: User, name: str, id_number: str, *, now: dt.datetime
) -> str | None:
    """Why the face result is not this account's person, or None if it is."""
    try:
        number, _ = normalize_id_number(id_number, today=now.date())
        same_name = normalize_name(name) == real_name_of(cipher, user)
    except (errors.IdNumberInvalid, errors.NameInvalid):
        return "not_this_person"
    same_number = cipher.blind_index(number, context=ID_NUMBER_CONTEXT) == user.id_number_index
    return None if same_name and same_number else "not_this_person"

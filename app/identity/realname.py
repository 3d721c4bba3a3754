"""Real-name verification (实名认证) of mini-program users, and reading the identity back."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from app.audit.service import Actor, record
from app.calendar import local_day
from app.identity import errors
from app.identity.models import User
from app.identity.verifiers import IdentityVerifier
from app.security.crypto import FieldCipher
from app.security.masking import mask_id_number, mask_name
from verification.errors import VerificationError

NAME_CONTEXT = "users.real_name"
ID_NUMBER_CONTEXT = "users.id_number"
EARLIEST_BIRTH = dt.date(1900, 1, 1)

# Han characters (basic, extension A, compatibility, extensions B and later for rare surnames)
# joined by single middle dots for names of ethnic minorities (阿依古丽·买买提).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_NAME = re.compile(rf"[{_HAN}]+(?:·[{_HAN}]+)*")
# Dots people type instead of U+00B7: bullet, katakana middle dot, fullwidth full stop, dot.
_DOTS = str.maketrans({"•": "·", "・": "·", "．": "·", ".": "·", "\u2027": "·"})


def normalize_name(raw: str) -> str:
    """The name as stored: trimmed, middle dots unified; NameInvalid if not a Chinese name."""
    name = raw.strip().translate(_DOTS)
    if not 2 <= len(name) <= 30:
        raise errors.NameInvalid(fields={"name": ["姓名长度应为2至30个字"]})
    if not _NAME.fullmatch(name):
        raise errors.NameInvalid(fields={"name": ["姓名只能包含汉字和间隔号“·”"]})
    return name


def normalize_id_number(raw: str, *, today: dt.date) -> tuple[str, dt.date]:
    """The 18-digit ID number (upper-case X) and its birth date; IdNumberInvalid otherwise.

    Check digit and birth date only. stdnum's `validate` also checks the region code against
    the years it was in use, which refuses real cards: 440113 (番禺区 since 2000) is printed on
    the cards of people born there before 2000 too.
    """
    number = ric.compact(raw)
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise _id_invalid("身份证号应为18位，最后一位可以是数字或X")
    if ric.calc_check_digit(number) != number[-1]:
        raise _id_invalid("身份证号校验位不正确，请核对")
    try:
        birth_date = ric.get_birth_date(number)
    except StdnumError:
        raise _id_invalid("身份证号中的出生日期不存在") from None
    if not EARLIEST_BIRTH <= birth_date <= today:
        raise _id_invalid("身份证号中的出生日期不正确")
    return number, birth_date


def _id_invalid(message: str) -> errors.IdNumberInvalid:
    return errors.IdNumberInvalid(fields={"id_number": [message]})


def verify_real_name(
    session: Session,
    cipher: FieldCipher,
    verifier: IdentityVerifier,
    user: User,
    *,
    name: str,
    id_number: str,
    now: dt.datetime,
    request_id: str | None = None,
) -> User:
    """Verify and record the user's real identity; one ID number per account, for good."""
    clean_name = normalize_name(name)
    clean_id, birth_date = normalize_id_number(id_number, today=local_day(now))
    index = cipher.blind_index(clean_id, context=ID_NUMBER_CONTEXT)

    if user.is_realname_verified:
        same = user.id_number_index == index and real_name_of(cipher, user) == clean_name
        if same:
            return user  # a retried request: nothing to change
        raise errors.RealNameAlreadyVerified()
    holder = session.scalars(
        select(User.id).where(User.id_number_index == index, User.id != user.id)
    ).first()
    if holder is not None:
        raise errors.IdNumberTaken()

    # Checked last: in production every call is billed.
    try:
        result = verifier.verify(clean_name, clean_id)
    except VerificationError as exc:
        raise errors.IdentityServiceUnavailable() from exc
    if not result.passed:
        record(
            session,
            "user.realname_rejected",
            actor=Actor("user", user.id),
            now=now,
            subject_type="user",
            subject_id=user.id,
            details={"method": result.method, "reason": result.reason},
            request_id=request_id,
        )
        raise errors.RealNameRejected()

    try:
        # The unique index is the last guard when two accounts verify one ID at the same time.
        with session.begin_nested():
            user.real_name_sealed = cipher.encrypt(clean_name, context=NAME_CONTEXT)
            user.id_number_sealed = cipher.encrypt(clean_id, context=ID_NUMBER_CONTEXT)
            user.id_number_index = index
            user.birth_date = birth_date
            user.realname_verified_at = now
            user.realname_method = result.method
    except IntegrityError:
        session.refresh(user)
        raise errors.IdNumberTaken() from None
    record(
        session,
        "user.realname_verified",
        actor=Actor("user", user.id),
        now=now,
        subject_type="user",
        subject_id=user.id,
        details={"method": result.method},
        request_id=request_id,
    )
    return user


def real_name_of(cipher: FieldCipher, user: User) -> str | None:
    """The user's verified real name in clear, or None if not verified."""
    if user.real_name_sealed is None or not user.is_realname_verified:
        return None
    return cipher.decrypt(user.real_name_sealed, context=NAME_CONTEXT)


def id_number_of(cipher: FieldCipher, user: User) -> str | None:
    """The user's verified ID number in clear, or None if not verified."""
    if user.id_number_sealed is None or not user.is_realname_verified:
        return None
    return cipher.decrypt(user.id_number_sealed, context=ID_NUMBER_CONTEXT)


def masked_identity(cipher: FieldCipher, user: User) -> dict[str, Any]:
    """The identity as shown to people: verified or not, masked name and ID number."""
    name = real_name_of(cipher, user)
    id_number = id_number_of(cipher, user)
    return {
        "verified": user.is_realname_verified,
        "name": mask_name(name) if name else None,
        "id_number": mask_id_number(id_number) if id_number else None,
        "verified_at": user.realname_verified_at,
        "method": user.realname_method,
        "face_verified_at": user.face_verified_at,
    }

"""The citizen behind a code a window terminal scanned: the app's own personal code, or the
city's personal code (红棉码, "无感取号").

The app's code names the account itself (signed, 60 s). A 红棉码 names a person through the
city's service: the ID number it answers is matched against the real-name verified accounts
(by blind index), so a citizen with a 禺好办 account gets the number on their phone with its
WeChat reminders; one without is served as a walk-in, known to the terminal by masked name
only. Either code is single use per action; nothing the city answers is stored but the
code's serial.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.cn import ric

from app.identity.models import User
from app.identity.realname import ID_NUMBER_CONTEXT
from app.queueing import codes
from app.queueing.errors import (
    CitizenNotRegistered,
    CityCodeNotLinked,
    CityCodeUnavailable,
    CodeExpired,
    CodeForged,
    CodeReplayed,
)
from app.queueing.models import CityCodeUse
from app.queueing.settings import QueueSettings
from app.security.crypto import FieldCipher
from app.security.masking import mask_id_number, mask_name
from verification.citycode import CityCodeRejected, CityCodeResolver
from verification.errors import VerificationError


@dataclass(frozen=True)
class ScannedCitizen:
    """Who stands at the window, and the code that said so."""

    via: str  # personal_code | city_code
    user: User | None  # None: a walk-in known only to the city (红棉码, no account here)
    serial: str  # the code's nonce or the city's serial: single use per action
    expires_at: dt.datetime
    # A walk-in's identity as the terminal shows it (masked), and their birth date for the
    # green channel; for an account these come from the account.
    masked_name: str | None = None
    masked_id_number: str | None = None
    birth_date: dt.date | None = field(default=None, repr=False)

    def registered_user(self) -> User:
        """The citizen's account; refused for a walk-in (an action that needs one)."""
        if self.user is None:
            raise CitizenNotRegistered()
        return self.user


def scan(
    session: Session,
    settings: QueueSettings,
    city_codes: CityCodeResolver | None,
    cipher: FieldCipher,
    code: str,
    *,
    now: dt.datetime,
) -> ScannedCitizen:
    """Identify the citizen behind a scanned code (not yet consumed)."""
    if codes.is_personal_token(settings, code):
        personal = codes.verify_personal(settings, code, now=now)
        user = session.get(User, personal.user_id)
        if user is None or user.disabled:
            raise CodeForged()
        return ScannedCitizen("personal_code", user, personal.nonce, personal.expires_at)
    if city_codes is None:
        raise CityCodeNotLinked()
    try:
        holder = city_codes.resolve(code)
    except CityCodeRejected as rejected:
        if rejected.reason == "code_expired":
            raise CodeExpired("红棉码已过期，请刷新后重新出示") from rejected
        raise CodeForged("无法识别的个人码或红棉码") from rejected
    except VerificationError as error:
        raise CityCodeUnavailable() from error
    if holder.expires_at <= now:
        raise CodeExpired("红棉码已过期，请刷新后重新出示")
    index = cipher.blind_index(holder.id_number, context=ID_NUMBER_CONTEXT)
    user = session.scalars(
        select(User).where(
            User.id_number_index == index,
            User.realname_verified_at.is_not(None),
            User.disabled.is_(False),
        )
    ).first()
    if user is not None:
        return ScannedCitizen("city_code", user, holder.serial, holder.expires_at)
    return ScannedCitizen(
        "city_code",
        None,
        holder.serial,
        holder.expires_at,
        masked_name=mask_name(holder.name),
        masked_id_number=mask_id_number(holder.id_number),
        birth_date=_birth_date(holder.id_number),
    )


def _birth_date(id_number: str) -> dt.date | None:
    try:
        birth: dt.date = ric.get_birth_date(id_number)
    except ValueError:  # a malformed number (stdnum's errors are ValueErrors): no green channel
        return None
    return birth


def consume(
    session: Session,
    scanned: ScannedCitizen,
    *,
    action: str,
    staff_id: int | None,
    now: dt.datetime,
) -> None:
    """Record one terminal action's use of the code; a second use is a replay."""
    if scanned.via == "personal_code":
        assert scanned.user is not None
        personal = codes.PersonalScan(scanned.user.id, scanned.serial, scanned.expires_at)
        codes.consume_personal(session, personal, action=action, staff_id=staff_id, now=now)
        return
    try:
        with session.begin_nested():
            session.add(
                CityCodeUse(
                    serial=scanned.serial,
                    action=action,
                    user_id=scanned.user.id if scanned.user else None,
                    staff_id=staff_id,
                    used_at=now,
                    expires_at=scanned.expires_at,
                )
            )
    except IntegrityError as error:
        raise CodeReplayed() from error

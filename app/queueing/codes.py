"""Compact signed tokens for hall codes and personal codes, and their QR images.

Formats (every part is URL- and `scene`-safe; the MAC is 9 bytes of HMAC-SHA256, base64url):

- printed hall code  `P<kid>.<hall code id>.<mac>`            (≤ 24 chars)
- dynamic hall code  `D<kid>.<hall id>.<period>.<mac>`          (≤ 29 chars)
- personal code      `U<kid>.<user id>.<expiry>.<nonce>.<mac>`  (≤ 45 chars)

Numbers are base 36. Hall codes fit a mini-program code's `scene` (≤ 32 characters). The key
id selects the verifying key, so keys rotate: sign with the first, verify with any listed.
A printed code names a `HallCode` row, so revoking the row kills the code; a dynamic code is
valid in its 30 s period and the next; a personal code lives 60 s and each terminal action may
use it once (its nonce is recorded).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import qrcode
import qrcode.image.svg
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import built_once
from app.halls.models import HallProfile
from app.queueing.errors import (
    CodeExpired,
    CodeForged,
    CodeReplayed,
    CodeRevoked,
    CodeWrongHall,
    LocationRequired,
    LocationTooFar,
)
from app.queueing.models import HallCode, PersonalCodeUse
from app.queueing.settings import QueueSettings

MAX_TOKEN_LENGTH = 64
EARTH_RADIUS_METERS = 6_371_000.0


def _b36(value: int) -> str:
    if value < 0:
        raise ValueError("negative")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


def _from_b36(text: str) -> int:
    if not text or len(text) > 12 or not text.isascii() or not text.isalnum():
        raise CodeForged()
    return int(text, 36)


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:9]
    return base64.urlsafe_b64encode(digest).decode()


def _sign(settings: QueueSettings, kind: str, *parts: str) -> str:
    kid, key = settings.signing_key
    body = ".".join((kind + kid, *parts))
    return f"{body}.{_mac(key, body)}"


def _open(settings: QueueSettings, token: str, kind: str, n_parts: int) -> list[str]:
    """The verified parts of a token of `kind`; CodeForged for anything else."""
    if not isinstance(token, str) or not 4 <= len(token) <= MAX_TOKEN_LENGTH:
        raise CodeForged()
    body, _, mac = token.rpartition(".")
    head, *parts = body.split(".")
    if not head.startswith(kind) or len(parts) != n_parts:
        raise CodeForged()
    key = settings.key(head[1:])
    if key is None or not hmac.compare_digest(_mac(key, body), mac):
        raise CodeForged()
    return parts


def sign_compact(settings: QueueSettings, kind: str, *parts: int) -> str:
    """A compact signed token of another kind (a licence shown at a counter), numbers in
    base 36, under the same rotating keys as the hall and personal codes."""
    return _sign(settings, kind, *(_b36(part) for part in parts))


def open_compact(settings: QueueSettings, token: str, kind: str, n_parts: int) -> list[int]:
    """The numbers of a compact token of `kind`; CodeForged for anything else."""
    return [_from_b36(part) for part in _open(settings, token, kind, n_parts)]


# -- printed hall codes ------------------------------------------------------------------------


def printed_codes(session: Session, hall_id: int) -> Sequence[HallCode]:
    """The hall's printed codes, live and revoked, oldest first."""
    return session.scalars(
        select(HallCode).where(HallCode.hall_id == hall_id).order_by(HallCode.id)
    ).all()


def printed_token(settings: QueueSettings, code: HallCode) -> str:
    """The token of a printed hall code (signed with the key it was issued under if present)."""
    key = settings.key(code.key_id)
    if key is None:
        raise CodeRevoked("该二维码的签名密钥已停用")
    body = f"P{code.key_id}.{_b36(code.id)}"
    return f"{body}.{_mac(key, body)}"


def create_printed_code(
    session: Session,
    settings: QueueSettings,
    hall_id: int,
    *,
    label: str | None,
    staff_id: int | None,
) -> HallCode:
    code = HallCode(
        hall_id=hall_id, key_id=settings.signing_key[0], label=label, issued_by=staff_id
    )
    session.add(code)
    session.flush()
    return code


def distance_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_METERS * math.asin(min(1.0, math.sqrt(a)))


def printed_code_columns() -> tuple[Any, ...]:
    """What a printed code's check reads (`scan_from`): the code's id, hall and revocation, and
    its hall's coordinates.

    A take selects them beside its other reads, outer-joined on the code id `printed_code_id`
    names; the columns are NULL when there is no such code."""
    return (
        HallCode.id,
        HallCode.hall_id,
        HallCode.revoked_at,
        HallProfile.latitude,
        HallProfile.longitude,
    )


@built_once
def _printed_code_statement() -> Any:
    # The code and its hall's coordinates in one read, built once.
    return (
        select(*printed_code_columns())
        .outerjoin(HallProfile, HallProfile.hall_id == HallCode.hall_id)
        .where(HallCode.id == bindparam("code_id"))
    )


def printed_code_id(token: object) -> int | None:
    """The code id a printed hall token names, its signature not yet checked; None if none.

    Only to read the row beforehand: `scan_from` checks the signature, and that the row read is
    the one the signed token names."""
    if not isinstance(token, str) or not token.startswith("P") or len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return _from_b36(parts[1])
    except CodeForged:
        return None


def _live_code_near(
    settings: QueueSettings,
    token: str,
    printed: Sequence[Any] | None,
    *,
    latitude: float | None,
    longitude: float | None,
) -> HallScan:
    """The live printed code a token names, with the caller within the radius of its hall.

    `printed`: the `printed_code_columns` row read for `printed_code_id(token)`, None or all
    NULL when there is none."""
    (code_part,) = _open(settings, token, "P", 1)
    if not printed or printed[0] != _from_b36(code_part):
        raise CodeForged()
    code_id, hall_id, revoked_at, hall_latitude, hall_longitude = printed
    if revoked_at is not None:
        raise CodeRevoked()
    if latitude is None or longitude is None:
        raise LocationRequired()
    # A hall without coordinates cannot be checked; refusing would lock everyone out.
    if hall_latitude is not None and hall_longitude is not None:
        distance = distance_meters(latitude, longitude, hall_latitude, hall_longitude)
        if distance > settings.radius_meters:
            raise LocationTooFar(radius_meters=settings.radius_meters)
    return HallScan(hall_id, "hall_code", code_id)


# -- dynamic entrance-screen codes -------------------------------------------------------------


def period_of(settings: QueueSettings, now: dt.datetime) -> int:
    return int(now.timestamp()) // settings.dynamic_period_seconds


def dynamic_token(
    settings: QueueSettings, hall_id: int, now: dt.datetime
) -> tuple[str, dt.datetime]:
    """The entrance screen's code for `now` and when the screen should show the next one."""
    period = period_of(settings, now)
    next_at = dt.datetime.fromtimestamp((period + 1) * settings.dynamic_period_seconds, dt.UTC)
    return _sign(settings, "D", _b36(hall_id), _b36(period)), next_at


def verify_dynamic(settings: QueueSettings, token: str, *, now: dt.datetime) -> int:
    """The hall id of a dynamic code shown in this period or the previous one."""
    hall_part, period_part = _open(settings, token, "D", 2)
    period, current = _from_b36(period_part), period_of(settings, now)
    if period > current + 1:  # one period of clock skew between screen and server
        raise CodeForged()
    if period < current - 1:
        raise CodeExpired()
    return _from_b36(hall_part)


@dataclass(frozen=True)
class HallScan:
    hall_id: int
    source: str  # hall_code | dynamic_code
    code_id: int | None = None


def verify_hall_token(
    session: Session,
    settings: QueueSettings,
    token: str,
    *,
    now: dt.datetime,
    latitude: float | None = None,
    longitude: float | None = None,
    hall_id: int | None = None,
) -> HallScan:
    """Either kind of hall code; `hall_id`, when given, must be the code's hall."""
    code_id = printed_code_id(token)
    printed = None
    if code_id is not None:
        printed = session.execute(_printed_code_statement(), {"code_id": code_id}).first()
    return scan_from(
        settings, token, printed, now=now, latitude=latitude, longitude=longitude, hall_id=hall_id
    )


def scan_from(
    settings: QueueSettings,
    token: str,
    printed: Sequence[Any] | None,
    *,
    now: dt.datetime,
    latitude: float | None,
    longitude: float | None,
    hall_id: int | None,
) -> HallScan:
    """`verify_hall_token` with the printed code's row already read (`printed_code_columns`
    for `printed_code_id(token)`; None when the token names none), so a take reads it with
    the rest of what it needs in one statement."""
    if isinstance(token, str) and token.startswith("D"):
        scan = HallScan(verify_dynamic(settings, token, now=now), "dynamic_code")
    else:
        scan = _live_code_near(settings, token, printed, latitude=latitude, longitude=longitude)
    if hall_id is not None and scan.hall_id != hall_id:
        raise CodeWrongHall()
    return scan


# -- personal codes ----------------------------------------------------------------------------


def personal_token(
    settings: QueueSettings, user_id: int, now: dt.datetime
) -> tuple[str, dt.datetime]:
    """A fresh personal code for the citizen and its expiry."""
    expires = int(now.timestamp()) + settings.personal_code_ttl_seconds
    nonce = secrets.token_urlsafe(6)  # 8 chars
    token = _sign(settings, "U", _b36(user_id), _b36(expires), nonce)
    return token, dt.datetime.fromtimestamp(expires, dt.UTC)


@dataclass(frozen=True)
class PersonalScan:
    user_id: int
    nonce: str
    expires_at: dt.datetime


def is_personal_token(settings: QueueSettings, token: str) -> bool:
    """Whether `token` has the shape of this app's personal code under one of our keys (its
    signature is checked by `verify_personal`); anything else may be another issuer's code."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return False
    head, *parts = token.split(".")
    return head.startswith("U") and len(parts) == 4 and settings.key(head[1:]) is not None


def verify_personal(settings: QueueSettings, token: str, *, now: dt.datetime) -> PersonalScan:
    """The citizen behind an unexpired personal code (not yet consumed)."""
    user_part, expiry_part, nonce = _open(settings, token, "U", 3)
    expires_at = dt.datetime.fromtimestamp(_from_b36(expiry_part), dt.UTC)
    if now >= expires_at:
        raise CodeExpired("个人码已过期，请刷新后重新出示")
    return PersonalScan(_from_b36(user_part), nonce, expires_at)


def consume_personal(
    session: Session,
    scan: PersonalScan,
    *,
    action: str,
    staff_id: int | None,
    now: dt.datetime,
) -> None:
    """Record one terminal action's use of a personal code; a second use is a replay."""
    try:
        with session.begin_nested():
            session.add(
                PersonalCodeUse(
                    nonce=scan.nonce,
                    action=action,
                    user_id=scan.user_id,
                    staff_id=staff_id,
                    used_at=now,
                    expires_at=scan.expires_at,
                )
            )
    except IntegrityError as error:
        raise CodeReplayed() from error


# -- QR images ---------------------------------------------------------------------------------


def _qr(token: str) -> qrcode.QRCode:  # type: ignore[type-arg]
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(token)
    qr.make(fit=True)
    return qr


def qr_png(token: str) -> bytes:
    """A PNG QR code of `token`."""
    buffer = io.BytesIO()
    _qr(token).make_image().save(buffer)
    return buffer.getvalue()


def qr_svg(token: str) -> bytes:
    """An SVG QR code of `token` (one path, scales for print)."""
    buffer = io.BytesIO()
    _qr(token).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()

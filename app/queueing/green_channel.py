"""The green channel (绿色通道): who may use it, and the clerk's record of a disability.

Age comes from the real-name data; disability (残疾证) does not, so a clerk's word puts a citizen in
the green channel for good. That word is audited: who recorded it, at which hall and window.
The note may name the certificate, so it stays on the flag and out of the audit details.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.halls.models import Window
from app.queueing.models import GreenChannelFlag
from app.queueing.settings import QueueSettings


def age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def green_reason(
    birth_date: dt.date | None, day: dt.date, settings: QueueSettings, *, flagged: bool
) -> str | None:
    """'elderly' or 'disability' when the citizen may use the green channel, else None.

    `birth_date` comes from the real-name identity; `flagged`: a clerk recorded a disability
    for the citizen (`is_flagged`).
    """
    if birth_date is not None and age_on(birth_date, day) >= settings.green_channel_age:
        return "elderly"
    return "disability" if flagged else None


def is_flagged(session: Session, user_id: int) -> bool:
    return session.get(GreenChannelFlag, user_id) is not None


def record_green_channel(
    session: Session,
    user_id: int,
    *,
    window: Window,
    staff_id: int,
    note: str | None,
    now: dt.datetime,
) -> GreenChannelFlag:
    """Flag the citizen for the green channel (kept as first recorded); audited once."""
    flag = session.get(GreenChannelFlag, user_id)
    if flag is not None:
        return flag
    flag = GreenChannelFlag(user_id=user_id, recorded_by=staff_id, note=note)
    session.add(flag)
    record(
        session,
        "queue.green_channel_recorded",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="user",
        subject_id=user_id,
        details={"hall_id": window.hall_id, "window_id": window.id},
    )
    session.flush()
    return flag

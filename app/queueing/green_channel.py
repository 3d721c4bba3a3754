"""The green channel for disability (残疾证): recorded once by a clerk who saw the certificate.

Age comes from the real-name data; disability does not, so a clerk's word puts a citizen in
the green channel for good. That word is audited: who recorded it, at which hall and window.
The note may name the certificate, so it stays on the flag and out of the audit details.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.halls.models import Window
from app.queueing.models import GreenChannelFlag


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

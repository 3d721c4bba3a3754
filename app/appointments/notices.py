"""The WeChat messages a citizen gets about an appointment: booked, a reminder before it, and
a notice when the hall cancels it (the day closed, its hours no longer cover the slot, or
the category stopped).

Each is enqueued in the transaction of its event, so it exists only for an event that
committed. The reminder waits in the outbox until its time (`not_before`); cancelling the
appointment withdraws it while it is still pending.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy.orm import Session

from app.appointments.models import Appointment
from app.appointments.rules import AppointmentRules
from app.calendar import LOCAL_TZ
from app.halls.models import ServiceCategory
from app.notify import outbox
from app.organisation.models import Hall

# A subscribe message's `thing` field holds 20 characters.
_THING_LIMIT = 20
REMINDER_TIP = "请携带身份证件按时到大厅签到"


class CancelReason(enum.Enum):
    """Why the hall cancelled an appointment, as the citizen reads it (fixed texts: a
    manager's own note may hold a phone number, which the outbox refuses to send)."""

    DAY_CLOSED = "大厅当日暂停办公"
    HOURS_CHANGED = "大厅调整了办公时间"
    CATEGORY_STOPPED = "该业务暂停办理"


def _reminder_key(appointment_id: int) -> str:
    return f"appointment:{appointment_id}:reminder"


def _when(appointment: Appointment, slot_minutes: int) -> str:
    start = appointment.starts_at.astimezone(LOCAL_TZ)
    end = start + dt.timedelta(minutes=slot_minutes)
    return f"{start:%Y-%m-%d %H:%M}~{end:%H:%M}"


def _common_fields(
    session: Session, appointment: Appointment, rules: AppointmentRules
) -> dict[str, str]:
    category = session.get(ServiceCategory, appointment.category_id)
    hall = session.get(Hall, appointment.hall_id)
    return {
        "thing1": (category.name if category else "预约办事")[:_THING_LIMIT],
        "thing2": (hall.name if hall else "办事大厅")[:_THING_LIMIT],
        "time3": _when(appointment, rules.slot_minutes),
    }


def notify_booked(
    session: Session, appointment: Appointment, *, rules: AppointmentRules, now: dt.datetime
) -> None:
    """Confirm the booking now, and schedule the reminder if the slot is far enough away."""
    fields = _common_fields(session, appointment, rules)
    page = f"pages/appointment/detail?id={appointment.id}"
    outbox.enqueue(
        session,
        user_id=appointment.user_id,
        template_key="appointment_booked",
        data={**fields, "character_string4": f"YY{appointment.id:08d}"},
        page=page,
        dedupe_key=f"appointment:{appointment.id}:booked",
        source=("appointment", appointment.id),
        now=now,
    )
    remind_at = appointment.starts_at - rules.reminder_lead
    if remind_at <= now:
        return  # booked at short notice: the confirmation is the reminder
    outbox.enqueue(
        session,
        user_id=appointment.user_id,
        template_key="appointment_reminder",
        data={**fields, "thing4": REMINDER_TIP},
        page=page,
        dedupe_key=_reminder_key(appointment.id),
        source=("appointment", appointment.id),
        now=now,
        not_before=remind_at,
    )


def notify_cancelled_by_hall(
    session: Session,
    appointment: Appointment,
    *,
    reason: CancelReason,
    rules: AppointmentRules,
    now: dt.datetime,
) -> None:
    """Tell the citizen the hall cancelled the appointment, and why."""
    outbox.enqueue(
        session,
        user_id=appointment.user_id,
        template_key="appointment_cancelled",
        data={
            **_common_fields(session, appointment, rules),
            "thing4": reason.value,
        },
        page=f"pages/appointment/detail?id={appointment.id}",
        dedupe_key=f"appointment:{appointment.id}:cancelled_by_hall",
        source=("appointment", appointment.id),
        now=now,
    )


def withdraw_reminder(session: Session, appointment: Appointment) -> None:
    """The appointment was cancelled: its reminder, if not yet sent, is not sent."""
    outbox.withdraw_pending(session, _reminder_key(appointment.id), code="appointment_cancelled")

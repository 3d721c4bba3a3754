"""What the hall screen shows: each window's current number, waiting counts, and each call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import calendar
from app.halls import service as halls
from app.halls.models import Window
from app.queueing.models import AT_COUNTER, QUEUED_STATUSES, Ticket, TicketTransition

# How many of the latest calls the board lists (the screen's "just called" column).
RECENT_CALLS = 6
CALL_ACTIONS = ("call", "call_number", "recall")


def window_name(window: Window) -> str:
    """What the hall calls the window: its label (e.g. "3号窗口（社保）") or "3号窗口"."""
    return window.label or f"{window.number}号窗口"


def announcement(display: str, window: Window) -> str:
    """The text the hall screen shows and speaks."""
    return f"请{display}号到{window_name(window)}办理"


def call_event(
    ticket: Ticket, window: Window, now: dt.datetime, *, recall: bool = False
) -> dict[str, Any]:
    """The screen event of a call (no personal data)."""
    return {
        "type": "recall" if recall else "call",
        "ticket_id": ticket.id,
        "display": ticket.display,
        "window": window.number,
        "window_name": window_name(window),
        "category_id": ticket.category_id,
        "text": announcement(ticket.display, window),
        "at": now.astimezone(calendar.LOCAL_TZ).isoformat(),
    }


def board(session: Session, hall_id: int, *, now: dt.datetime) -> dict[str, Any]:
    """Each window's current number, the latest calls and the waiting count per category,
    numbers only."""
    day = calendar.local_day(now)
    hall = halls.get_hall(session, hall_id)
    windows = halls.list_windows(session, hall_id)
    by_id = {w.id: w for w in windows}
    current = {
        t.window_id: t
        for t in session.scalars(
            select(Ticket).where(
                Ticket.hall_id == hall_id,
                Ticket.service_day == day,
                Ticket.status.in_(AT_COUNTER),
            )
        )
    }
    counts = dict(
        session.execute(
            select(Ticket.category_id, func.count())
            .where(
                Ticket.hall_id == hall_id,
                Ticket.service_day == day,
                Ticket.status.in_(QUEUED_STATUSES),
            )
            .group_by(Ticket.category_id)
        ).all()
    )
    recent = session.execute(
        select(Ticket.display, TicketTransition.window_id, TicketTransition.at)
        .join(Ticket, Ticket.id == TicketTransition.ticket_id)
        .where(
            Ticket.hall_id == hall_id,
            Ticket.service_day == day,
            TicketTransition.action.in_(CALL_ACTIONS),
        )
        .order_by(TicketTransition.at.desc(), TicketTransition.id.desc())
        .limit(RECENT_CALLS)
    ).all()
    return {
        "hall_id": hall_id,
        "hall_name": hall.name,
        "service_day": day,
        "open": halls.is_open(session, hall_id, now),
        "windows": [
            {
                "number": w.number,
                "label": w.label,
                "name": window_name(w),
                "status": str(w.status),
                "current": current[w.id].display if w.id in current else None,
                "current_status": str(current[w.id].status) if w.id in current else None,
            }
            for w in windows
        ],
        "categories": [
            {"id": c.id, "name": c.name, "prefix": c.prefix, "waiting": int(counts.get(c.id, 0))}
            for c in halls.list_categories(session, hall_id, active_only=True)
        ],
        "recent_calls": [
            {
                "display": display,
                "window": by_id[window_id].number,
                "window_name": window_name(by_id[window_id]),
                "text": announcement(display, by_id[window_id]),
                "at": at,
            }
            for display, window_id, at in recent
            if window_id in by_id
        ],
        "generated_at": now,
    }


def waiting_by_hall(session: Session, day: dt.date) -> dict[int, int]:
    """Tickets waiting to be called on local `day`, per hall (the district's view)."""
    return {
        int(hall_id): int(count)
        for hall_id, count in session.execute(
            select(Ticket.hall_id, func.count())
            .where(Ticket.service_day == day, Ticket.status.in_(QUEUED_STATUSES))
            .group_by(Ticket.hall_id)
        ).all()
    }

"""What the hall screen shows: each window's current number, waiting counts, and each call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.halls import service as halls
from app.halls.models import Window
from app.queueing.models import AT_COUNTER, QUEUED_STATUSES, Ticket


def announcement(display: str, window_number: int) -> str:
    """The text the hall screen shows and speaks."""
    return f"请{display}号到{window_number}号窗口办理"


def call_event(
    ticket: Ticket, window: Window, now: dt.datetime, *, recall: bool = False
) -> dict[str, Any]:
    """The screen event of a call (no personal data)."""
    return {
        "type": "recall" if recall else "call",
        "ticket_id": ticket.id,
        "display": ticket.display,
        "window": window.number,
        "category_id": ticket.category_id,
        "text": announcement(ticket.display, window.number),
        "at": now.isoformat(),
    }


def board(session: Session, hall_id: int, *, now: dt.datetime) -> dict[str, Any]:
    """Each window's current number and the waiting count per category, numbers only."""
    day = halls.local_day(now)
    windows = halls.list_windows(session, hall_id)
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
    return {
        "hall_id": hall_id,
        "service_day": day,
        "open": halls.is_open(session, hall_id, now),
        "windows": [
            {
                "number": w.number,
                "label": w.label,
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
        "generated_at": now,
    }

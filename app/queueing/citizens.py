"""What a citizen holds in the queue: their own tickets, and the card a window sees on a scan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import calendar
from app.queueing.errors import TicketNotFound
from app.queueing.green_channel import green_reason, is_flagged
from app.queueing.models import ACTIVE_STATUSES, Ticket
from app.queueing.scanned import ScannedCitizen
from app.queueing.settings import QueueSettings


def my_tickets(session: Session, user_id: int, *, now: dt.datetime) -> Sequence[Ticket]:
    """The citizen's tickets of today and any still active, newest first (a short list: one
    active ticket per category, and a day's takes are rate limited)."""
    today = calendar.local_day(now)
    return session.scalars(
        select(Ticket)
        .where(
            Ticket.user_id == user_id,
            or_(Ticket.service_day == today, Ticket.status.in_(ACTIVE_STATUSES)),
        )
        .order_by(Ticket.taken_at.desc())
    ).all()


def own_ticket(session: Session, user_id: int, ticket_id: int) -> Ticket:
    """One of the citizen's tickets; someone else's is as unknown as a missing one."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.user_id != user_id:
        raise TicketNotFound(ticket_id=ticket_id)
    return ticket


@dataclass(frozen=True)
class CitizenAtWindow:
    """What a clerk learns from a scanned code (identity masked by the caller for an account)."""

    scanned: ScannedCitizen
    green_reason: str | None
    tickets_here_today: Sequence[Ticket]  # an account's; a walk-in's tickets are anonymous


def citizen_at_window(
    session: Session,
    scanned: ScannedCitizen,
    hall_id: int,
    *,
    now: dt.datetime,
    settings: QueueSettings,
) -> CitizenAtWindow:
    today = calendar.local_day(now)
    user = scanned.user
    if user is None:
        reason = green_reason(scanned.birth_date, today, settings, flagged=False)
        return CitizenAtWindow(scanned, reason, [])
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.user_id == user.id, Ticket.hall_id == hall_id, Ticket.service_day == today)
        .order_by(Ticket.taken_at)
    ).all()
    reason = green_reason(user.birth_date, today, settings, flagged=is_flagged(session, user.id))
    return CitizenAtWindow(scanned, reason, tickets)

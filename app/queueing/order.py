"""The call order: who a window calls next, and how many people are ahead of a ticket.

Checked-in appointments whose slot has come first, then the green channel, then everyone
else; within a rank, first queued first (a late return or a transfer keeps its queue time).
The same order exists twice, as SQL for the database to sort by and as a Python key for the
forecast's replay; `tests/queueing/test_estimate.py` keeps the two in agreement.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.queueing.models import QUEUED_STATUSES, Ticket, TicketPriority


def call_rank(now: dt.datetime) -> Any:
    """The rank of a ticket at `now` as a SQL expression: 0 due appointment, 1 green, 2 other."""
    return case(
        (and_(Ticket.priority == int(TicketPriority.APPOINTMENT), Ticket.due_at <= now), 0),
        (Ticket.priority == int(TicketPriority.GREEN), 1),
        else_=2,
    )


def rank_at(priority: int, due_at: dt.datetime | None, now: dt.datetime) -> int:
    """The rank of a ticket at `now`, as `call_rank` computes it in SQL."""
    if priority == TicketPriority.APPOINTMENT and due_at is not None and due_at <= now:
        return 0
    return 1 if priority == TicketPriority.GREEN else 2


def in_call_order(now: dt.datetime) -> tuple[Any, ...]:
    """ORDER BY terms of the call order at `now`."""
    return (call_rank(now), Ticket.queue_at, Ticket.id)


def queued_in_category(
    session: Session, category_id: int, day: dt.date, now: dt.datetime, *, first: int | None = None
) -> list[Ticket]:
    """The category's waiting tickets of `day` in call order (only the `first` few if given)."""
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.category_id == category_id,
                Ticket.service_day == day,
                Ticket.status.in_(QUEUED_STATUSES),
            )
            .order_by(*in_call_order(now))
            .limit(first)
        )
    )


def position_of(session: Session, ticket: Ticket, *, now: dt.datetime) -> int:
    """How many people are ahead of a waiting ticket in its category (0 = next)."""
    rank, mine = call_rank(now), rank_at(ticket.priority, ticket.due_at, now)
    ahead = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.category_id == ticket.category_id,
            Ticket.service_day == ticket.service_day,
            Ticket.status.in_(QUEUED_STATUSES),
            Ticket.id != ticket.id,
            or_(
                rank < mine,
                and_(
                    rank == mine,
                    or_(
                        Ticket.queue_at < ticket.queue_at,
                        and_(Ticket.queue_at == ticket.queue_at, Ticket.id < ticket.id),
                    ),
                ),
            ),
        )
    )
    return int(ahead or 0)

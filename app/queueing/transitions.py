"""How a ticket moves from one status to another, and the moves made away from a window.

Every move is `UPDATE tickets ... WHERE id = ? AND status IN (...)` checked by rowcount, so a
stale or doubled click is a 409 (IllegalTransition) rather than a second move, and each move
leaves a row in `ticket_transitions` (who, when, from what, to what). The moves a clerk makes at
a window are in `windows.py`; here are the citizen's cancel, the late return (过号顺延) and the
nightly expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import calendar
from app.audit.service import Actor
from app.halls import service as halls
from app.halls.models import HallProfile
from app.queueing.errors import (
    AlreadyHoldingTicket,
    IllegalTransition,
    LateReturnUsed,
    TicketNotFound,
    WindowBusy,
)
from app.queueing.models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    QUEUED_STATUSES,
    Ticket,
    TicketPriority,
    TicketStatus,
    TicketTransition,
)
from app.queueing.order import queued_in_category
from app.queueing.settings import QueueSettings


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id=ticket_id)
    return ticket


def hall_ticket(session: Session, hall_id: int, ticket_id: int) -> Ticket:
    """A ticket of this hall; another hall's is as unknown as a missing one."""
    ticket = get_ticket(session, ticket_id)
    if ticket.hall_id != hall_id:
        raise TicketNotFound(ticket_id=ticket_id)
    return ticket


def hall_rule(session: Session, hall_id: int, name: str, default: int) -> int:
    """A queue rule the hall may set for itself (max_recalls, late_return_places), else default."""
    profile = session.get(HallProfile, hall_id)
    value = getattr(profile, name, None) if profile is not None else None
    return int(value) if value is not None else default


def move(
    session: Session,
    ticket: Ticket,
    *,
    action: str,
    from_statuses: Sequence[TicketStatus],
    to_status: TicketStatus,
    actor: Actor,
    now: dt.datetime,
    values: dict[str, Any] | None = None,
    window_id: int | None = None,
    at_window: int | None = None,
    version: int | None = None,
    details: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Ticket:
    """Apply one move as a guarded UPDATE and log it; IllegalTransition if the ticket moved on.

    `at_window`: the ticket must be at that window; `version`: the version the caller saw;
    `idempotency_key`: the terminal's name for this move, kept with it for its retries.
    """
    previous = ticket.status
    statement = update(Ticket).where(Ticket.id == ticket.id, Ticket.status.in_(from_statuses))
    if at_window is not None:
        statement = statement.where(Ticket.window_id == at_window)
    if version is not None:
        statement = statement.where(Ticket.version == version)
    statement = statement.values(
        status=to_status, version=Ticket.version + 1, **(values or {})
    ).execution_options(synchronize_session=False)
    try:
        with session.begin_nested():
            result = session.execute(statement)
    except IntegrityError as error:  # the window already has a called/serving ticket
        raise WindowBusy() from error
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(ticket)
        raise IllegalTransition(
            ticket_id=ticket.id, status=str(ticket.status), action=action, version=ticket.version
        )
    session.add(
        TicketTransition(
            ticket_id=ticket.id,
            action=action,
            from_status=previous,
            to_status=to_status,
            actor_kind=actor.kind,
            actor_id=actor.id,
            window_id=window_id,
            at=now,
            details=details or {},
            idempotency_key=idempotency_key,
        )
    )
    session.flush()
    session.refresh(ticket)
    return ticket


def cancel(session: Session, ticket: Ticket, *, actor: Actor, now: dt.datetime) -> Ticket:
    """The citizen gives up a ticket not yet at a counter."""
    return move(
        session,
        ticket,
        action="cancel",
        from_statuses=(*QUEUED_STATUSES, TicketStatus.CALLED),
        to_status=TicketStatus.CANCELLED,
        actor=actor,
        now=now,
        values={"finished_at": now, "window_id": None},
    )


def holds_a_number(session: Session, ticket: Ticket, category_id: int) -> bool:
    """Whether the ticket's citizen holds another active ticket in `category_id` (the index
    allows one per citizen and category; a move that broke it would fail as a busy window)."""
    if ticket.user_id is None:
        return False
    found = session.scalar(
        select(Ticket.id).where(
            Ticket.id != ticket.id,
            Ticket.user_id == ticket.user_id,
            Ticket.category_id == category_id,
            Ticket.status.not_in(FINAL_STATUSES),
        )
    )
    return found is not None


def late_return(
    session: Session, ticket: Ticket, *, actor: Actor, now: dt.datetime, settings: QueueSettings
) -> Ticket:
    """A no-show comes back the same day: back in the queue, some places back (过号顺延), once."""
    if ticket.status == TicketStatus.NO_SHOW and ticket.late_return_used:
        raise LateReturnUsed()
    if ticket.service_day != calendar.local_day(now):
        raise IllegalTransition("过号顺延仅限当日", ticket_id=ticket.id, status=str(ticket.status))
    if holds_a_number(session, ticket, ticket.category_id):
        raise AlreadyHoldingTicket()  # a new number taken since the miss: that one stands
    places = hall_rule(session, ticket.hall_id, "late_return_places", settings.late_return_places)
    order = queued_in_category(session, ticket.category_id, ticket.service_day, now)
    normal = [t for t in order if t.priority == TicketPriority.NORMAL]
    if len(normal) >= places and places > 0:
        # Just behind the N-th person now waiting in the ordinary queue.
        queue_at = normal[places - 1].queue_at + dt.timedelta(microseconds=1)
    else:
        queue_at = now
    return move(
        session,
        ticket,
        action="late_return",
        from_statuses=(TicketStatus.NO_SHOW,),
        to_status=TicketStatus.WAITING,
        actor=actor,
        now=now,
        values={
            "queue_at": queue_at,
            "late_return_used": True,
            "finished_at": None,
            "window_id": None,
            "priority": int(TicketPriority.NORMAL),
            "recall_count": 0,
        },
        details={"places": places},
    )


def expire_leftovers(session: Session, *, now: dt.datetime, hall_id: int | None = None) -> int:
    """Expire every active ticket of an earlier day, and today's queue once the hall has
    closed. Today's tickets at a counter (called, being served, or 挂起 while the citizen
    fetches a document) are the clerk's to finish after closing time; the next day's sweep
    expires what a clerk left.

    Run by the job runner every minute, so the common case must be cheap: one query finds the
    halls with active tickets and their oldest day; a hall whose active tickets are all of
    today and which has not closed yet is skipped. Concurrent sweeps split the work (SKIP
    LOCKED on PostgreSQL) and every expiry is a guarded update, so running it twice is harmless.
    """
    today = calendar.local_day(now)
    pending = (
        select(Ticket.hall_id, func.min(Ticket.service_day))
        .where(Ticket.status.in_(ACTIVE_STATUSES), Ticket.service_day <= today)
        .group_by(Ticket.hall_id)
    )
    if hall_id is not None:
        pending = pending.where(Ticket.hall_id == hall_id)
    expired = 0
    for hid, oldest_day in session.execute(pending).all():
        last_day = today - dt.timedelta(days=1)
        if oldest_day > last_day:
            closing = halls.closing_time(session, hid, today)
            if closing is not None and now < closing:
                continue  # only today's tickets, and the hall still open
            last_day = today
        leftovers = session.scalars(
            select(Ticket)
            .where(
                Ticket.hall_id == hid,
                Ticket.service_day <= last_day,
                Ticket.status.in_(ACTIVE_STATUSES),
                or_(Ticket.service_day < today, Ticket.status.in_(QUEUED_STATUSES)),
            )
            # In the queue counts' key order: each expiry moves its category's count (a
            # trigger), and a transfer locks two counts in this order too, so the sweep and a
            # transfer at closing time cannot deadlock.
            .order_by(Ticket.category_id, Ticket.service_day, Ticket.id)
            .with_for_update(skip_locked=True)
        ).all()
        for ticket in leftovers:
            try:
                move(
                    session,
                    ticket,
                    action="expire",
                    from_statuses=(
                        ACTIVE_STATUSES if ticket.service_day < today else QUEUED_STATUSES
                    ),
                    to_status=TicketStatus.EXPIRED,
                    actor=Actor.system(),
                    now=now,
                    values={"finished_at": now, "window_id": None},
                )
                expired += 1
            except IllegalTransition:
                continue  # finished concurrently
    return expired

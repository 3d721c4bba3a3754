"""A clerk at a window: opening it, calling the next number, and every action on that ticket.

Calls take turns per window: call-next locks the window row (a guarded no-op UPDATE), then
claims the first waiting ticket with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so two windows
never claim the same one; a partial unique index keeps one called/serving ticket per window.

The actions on a called ticket (recall, no-show, serve, hold, resume, finish, transfer) differ
only in where they may start, where they lead and what else they change: each is a small plan
below, and `act` carries any of them out the same way, at this window, as a guarded move.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import calendar
from app.audit.service import Actor
from app.db import affected_rows
from app.halls import service as halls
from app.halls.models import Window, WindowStatus
from app.queueing.errors import (
    AlreadyHoldingTicket,
    CategoryNotServed,
    IllegalTransition,
    QueueEmpty,
    RecallsNotExhausted,
    WindowBusy,
    WindowNotOpen,
)
from app.queueing.models import (
    AT_COUNTER,
    QUEUED_STATUSES,
    Ticket,
    TicketStatus,
    TicketTransition,
    served_so_far,
)
from app.queueing.notices import notify_called, notify_near, notify_rating_invite
from app.queueing.order import in_call_order
from app.queueing.settings import QueueSettings
from app.queueing.transitions import hall_rule, hall_ticket, holds_a_number, move

# -- the window itself -------------------------------------------------------------------------


def set_window_status(
    session: Session, window: Window, status: WindowStatus, *, clerk_id: int, now: dt.datetime
) -> Window:
    """Open, pause or close a window; closing needs no ticket called, served or held there."""
    if status == WindowStatus.CLOSED:
        busy = session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.window_id == window.id,
                Ticket.status.in_((*AT_COUNTER, TicketStatus.HELD)),
            )
        )
        if busy:
            raise WindowBusy("窗口还有未办结的号码，不能关闭")
    window.status = status
    window.clerk_id = None if status == WindowStatus.CLOSED else clerk_id
    window.status_changed_at = now
    session.flush()
    release_transfers(session, window)
    return window


def release_transfers(session: Session, window: Window) -> int:
    """Tickets transferred to `window` that it can no longer call (it closed, or no longer
    serves their category) go back to their category's queue, keeping their place; returns
    how many. Left addressed to it, no other window would call them and the citizens would
    wait until the closing sweep expired their numbers."""
    query = update(Ticket).where(
        Ticket.target_window_id == window.id, Ticket.status.in_(QUEUED_STATUSES)
    )
    if window.status != WindowStatus.CLOSED:
        query = query.where(Ticket.category_id.not_in(_category_ids(window)))
    released = session.execute(
        query.values(target_window_id=None).execution_options(synchronize_session=False)
    )
    return affected_rows(released)


def _lock_open_window(session: Session, window: Window) -> None:
    # A no-op UPDATE guarded by status takes the window's row lock (PostgreSQL) or the write lock
    # (SQLite) until commit: calls at one window take turns, and a closed window cannot call.
    result = session.execute(
        update(Window)
        .where(Window.id == window.id, Window.status == WindowStatus.OPEN)
        .values(status_changed_at=Window.status_changed_at)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise WindowNotOpen()


def _check_counter_free(session: Session, window: Window) -> None:
    at_counter = session.scalars(
        select(Ticket.id).where(Ticket.window_id == window.id, Ticket.status.in_(AT_COUNTER))
    ).first()
    if at_counter is not None:
        raise WindowBusy()


def _claim_window(session: Session, window: Window) -> None:
    """Take the open window's lock until commit and check nobody is at its counter."""
    _lock_open_window(session, window)
    _check_counter_free(session, window)


def _category_ids(window: Window) -> list[int]:
    return [c.id for c in window.categories]


# -- calling -----------------------------------------------------------------------------------


def earlier_call(session: Session, window: Window, idempotency_key: str) -> Ticket | None:
    """The ticket this window called with this Idempotency-Key, if it did: a resent call-next.

    Takes the window's lock first, so a resend that arrives while the first is still being
    made waits for it and then finds it, instead of finding the counter busy.
    """
    _lock_open_window(session, window)
    return session.scalars(
        select(Ticket)
        .join(TicketTransition, TicketTransition.ticket_id == Ticket.id)
        .where(
            TicketTransition.window_id == window.id,
            TicketTransition.idempotency_key == idempotency_key,
        )
    ).first()


def call_next(
    session: Session,
    window: Window,
    *,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings,
    idempotency_key: str | None = None,
) -> Ticket:
    """Claim the next ticket for this window: due appointments, green channel, then FIFO."""
    _claim_window(session, window)
    query = (
        select(Ticket)
        .where(
            Ticket.hall_id == window.hall_id,
            Ticket.service_day == calendar.local_day(now),
            Ticket.status.in_(QUEUED_STATUSES),
            Ticket.category_id.in_(_category_ids(window)),
            (Ticket.target_window_id.is_(None)) | (Ticket.target_window_id == window.id),
        )
        .order_by(*in_call_order(now))
        .limit(1)
        .with_for_update(skip_locked=True, of=Ticket)
    )
    ticket = session.scalars(query).first()
    if ticket is None:
        raise QueueEmpty()
    return _mark_called(
        session,
        ticket,
        window,
        actor=actor,
        now=now,
        settings=settings,
        idempotency_key=idempotency_key,
    )


def call_number(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings,
) -> Ticket:
    """Call a specific waiting ticket (指呼) to this window."""
    ticket = hall_ticket(session, window.hall_id, ticket_id)
    _lock_open_window(session, window)
    if ticket.category_id not in _category_ids(window) and ticket.target_window_id != window.id:
        raise CategoryNotServed()
    _check_counter_free(session, window)
    return _mark_called(
        session, ticket, window, actor=actor, now=now, settings=settings, action="call_number"
    )


def _mark_called(
    session: Session,
    ticket: Ticket,
    window: Window,
    *,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings,
    action: str = "call",
    idempotency_key: str | None = None,
) -> Ticket:
    move(
        session,
        ticket,
        action=action,
        from_statuses=QUEUED_STATUSES,
        to_status=TicketStatus.CALLED,
        actor=actor,
        now=now,
        values={"window_id": window.id, "called_at": now, "target_window_id": None},
        window_id=window.id,
        idempotency_key=idempotency_key,
    )
    notify_called(session, ticket, window, now)
    notify_near(session, ticket.category_id, ticket.service_day, now, settings)
    return ticket


# -- actions on the ticket at the window -------------------------------------------------------

ActionName = Literal["recall", "no_show", "serve", "hold", "resume", "finish", "transfer"]


@dataclass(frozen=True)
class WindowAction:
    """A clerk's action on a ticket at their window, as the terminal sends it."""

    name: ActionName
    version: int | None = None  # the ticket version the clerk saw: a stale click is a 409
    matter: str | None = None  # finish: the matter handled
    category_id: int | None = None  # transfer: to this category (default: the same)
    target_window_id: int | None = None  # transfer: to this window


@dataclass(frozen=True)
class _Plan:
    from_statuses: tuple[TicketStatus, ...]
    to_status: TicketStatus
    values: dict[str, Any]
    details: dict[str, Any] | None = None


class _Context:
    """What a plan may look at: the session, the window, the ticket, the request, the clock."""

    def __init__(
        self,
        session: Session,
        window: Window,
        ticket: Ticket,
        action: WindowAction,
        now: dt.datetime,
        settings: QueueSettings,
    ) -> None:
        self.session, self.window, self.ticket = session, window, ticket
        self.action, self.now, self.settings = action, now, settings


def _recall(c: _Context) -> _Plan:
    values = {"recall_count": Ticket.recall_count + 1, "called_at": c.now}
    return _Plan((TicketStatus.CALLED,), TicketStatus.CALLED, values)


def _no_show(c: _Context) -> _Plan:
    required = hall_rule(c.session, c.window.hall_id, "max_recalls", c.settings.max_recalls)
    if c.ticket.status == TicketStatus.CALLED and c.ticket.recall_count < required:
        raise RecallsNotExhausted(recalls=c.ticket.recall_count, required=required)
    # The window that called it stays on the ticket, as on a finished one: the statistics
    # by window count its no-shows.
    return _Plan(
        (TicketStatus.CALLED,),
        TicketStatus.NO_SHOW,
        {"finished_at": c.now},
        {"recalls": c.ticket.recall_count},
    )


def _serve(c: _Context) -> _Plan:
    return _Plan((TicketStatus.CALLED,), TicketStatus.SERVING, {"serving_started_at": c.now})


def _hold(c: _Context) -> _Plan:
    """Suspend service (挂起) while the citizen fetches a document; the window may call others."""
    values = {"service_seconds": served_so_far(c.ticket, c.now), "serving_started_at": None}
    return _Plan((TicketStatus.SERVING,), TicketStatus.HELD, values)


def _resume(c: _Context) -> _Plan:
    _claim_window(c.session, c.window)
    return _Plan((TicketStatus.HELD,), TicketStatus.SERVING, {"serving_started_at": c.now})


def _finish(c: _Context) -> _Plan:
    matter = c.action.matter
    values = {
        "finished_at": c.now,
        "matter": matter,
        "service_seconds": served_so_far(c.ticket, c.now),
    }
    details = {"matter": matter} if matter else None
    return _Plan((TicketStatus.SERVING,), TicketStatus.DONE, values, details)


def _transfer(c: _Context) -> _Plan:
    """To another category or window, keeping the number and the original take time."""
    ticket, window, target_window_id = c.ticket, c.window, c.action.target_window_id
    category = halls.get_category(c.session, c.action.category_id or ticket.category_id)
    if category.hall_id != window.hall_id:
        raise CategoryNotServed("只能转到本大厅的业务")
    if target_window_id is not None:
        target = halls.get_window(c.session, target_window_id)
        if target.hall_id != window.hall_id:
            raise CategoryNotServed("只能转到本大厅的窗口")
        if target.status == WindowStatus.CLOSED:
            raise WindowNotOpen("目标窗口已关闭，请转到其他窗口")
        if category.id not in _category_ids(target):
            raise CategoryNotServed("目标窗口不办理该业务")
    if category.id == ticket.category_id and target_window_id is None:
        raise IllegalTransition(
            "请选择其他业务或窗口", ticket_id=ticket.id, status=str(ticket.status)
        )
    if category.id != ticket.category_id and holds_a_number(c.session, ticket, category.id):
        # The one-active-ticket index would refuse the move too, as a busy window.
        raise AlreadyHoldingTicket("该市民已持有目标业务的有效号码，请先办结或取消该号码")
    serving = ticket.status == TicketStatus.SERVING
    return _Plan(
        (*AT_COUNTER, TicketStatus.HELD),
        TicketStatus.TRANSFERRED,
        {
            "category_id": category.id,
            "target_window_id": target_window_id,
            "window_id": None,
            "queue_at": ticket.taken_at,
            "service_seconds": served_so_far(ticket, c.now) if serving else ticket.service_seconds,
            "serving_started_at": None,
            "recall_count": 0,
        },
        {
            "from_category_id": ticket.category_id,
            "to_category_id": category.id,
            "to_window_id": target_window_id,
        },
    )


_PLANS: dict[str, Callable[[_Context], _Plan]] = {
    "recall": _recall,
    "no_show": _no_show,
    "serve": _serve,
    "hold": _hold,
    "resume": _resume,
    "finish": _finish,
    "transfer": _transfer,
}


def act(
    session: Session,
    window: Window,
    ticket_id: int,
    action: WindowAction,
    *,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings,
) -> Ticket:
    """Carry out one action on a ticket that is at this window (held, for resume)."""
    ticket = hall_ticket(session, window.hall_id, ticket_id)
    plan = _PLANS[action.name](_Context(session, window, ticket, action, now, settings))
    moved = move(
        session,
        ticket,
        action=action.name,
        from_statuses=plan.from_statuses,
        to_status=plan.to_status,
        actor=actor,
        now=now,
        values=plan.values,
        window_id=window.id,
        at_window=window.id,
        version=action.version,
        details=plan.details,
    )
    if moved.status == TicketStatus.DONE:
        notify_rating_invite(session, moved, now)
    return moved

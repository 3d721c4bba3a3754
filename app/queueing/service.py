"""Taking numbers, calling them, and every other ticket transition.

Concurrency, by design:
- numbers come from an atomic upsert of the (category, day) counter row in the ticket's own
  transaction: the row lock serialises takes of one category, a rollback returns the number;
- call-next locks the window row (a guarded no-op UPDATE), then claims the first waiting
  ticket with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so two windows never claim the same one;
- every transition is `UPDATE tickets ... WHERE id = ? AND status IN (...)` checked by rowcount
  (409 on a stale or doubled click), and partial unique indexes are the last guard for "one
  active ticket per citizen and category" and "one called/serving ticket per window".
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from app.audit.service import Actor
from app.halls import service as halls
from app.halls.models import HallProfile, ServiceCategory, Window, WindowStatus
from app.identity.models import User
from app.notify import outbox
from app.organisation.models import Hall
from app.queueing import numbering
from app.queueing.errors import (
    AlreadyHoldingTicket,
    CapReached,
    CategoryNotServed,
    HallClosed,
    IllegalTransition,
    LateReturnUsed,
    QueueEmpty,
    RecallsNotExhausted,
    TakeConflict,
    TicketNotFound,
    WindowBusy,
    WindowNotOpen,
)
from app.queueing.models import (
    ACTIVE_STATUSES,
    AT_COUNTER,
    QUEUED_STATUSES,
    GreenChannelFlag,
    Ticket,
    TicketCounter,
    TicketPriority,
    TicketSource,
    TicketStatus,
    TicketTransition,
    served_so_far,
)
from app.queueing.numbering import display_number
from app.queueing.order import in_call_order, queued_in_category
from app.queueing.settings import QueueSettings


def announcement(display: str, window_number: int) -> str:
    """The text the hall screen shows and speaks."""
    return f"请{display}号到{window_number}号窗口办理"


# -- green channel -----------------------------------------------------------------------------


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


# -- transitions log ---------------------------------------------------------------------------


def _record(
    session: Session,
    ticket_id: int,
    action: str,
    from_status: str | None,
    to_status: str,
    actor: Actor,
    now: dt.datetime,
    window_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        TicketTransition(
            ticket_id=ticket_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor_kind=actor.kind,
            actor_id=actor.id,
            window_id=window_id,
            at=now,
            details=details or {},
        )
    )


# -- taking a number ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TakeState:
    """What a take needs to know before it draws a number, read in one query."""

    queued: int  # people queued in the category today
    holding_id: int | None  # the citizen's active ticket of the category
    replay_id: int | None  # the citizen's ticket taken with this Idempotency-Key
    birth_date: dt.date | None  # from the citizen's real-name identity, for the green channel
    flagged: bool  # the green channel for a recorded disability
    last_number: int  # the category's counter today (0 before the first number)


@functools.cache
def _take_state_statement() -> Any:
    # One statement for all of it, a take being dominated by round trips; each part is an
    # index lookup (the queued count, an index range of the category's day). A NULL user or key
    # matches nothing, which is what an anonymous take or one without a key needs.
    category_id: Any = bindparam("category_id")
    day: Any = bindparam("day")
    user_id: Any = bindparam("user_id")
    key: Any = bindparam("key")
    return select(
        select(func.count())
        .where(
            Ticket.category_id == category_id,
            Ticket.service_day == day,
            Ticket.status.in_(QUEUED_STATUSES),
        )
        .scalar_subquery(),
        select(func.min(Ticket.id))
        .where(
            Ticket.user_id == user_id,
            Ticket.category_id == category_id,
            Ticket.status.in_(ACTIVE_STATUSES),
        )
        .scalar_subquery(),
        select(Ticket.id)
        .where(Ticket.user_id == user_id, Ticket.idempotency_key == key)
        .scalar_subquery(),
        select(User.birth_date).where(User.id == user_id).scalar_subquery(),
        exists().where(GreenChannelFlag.user_id == user_id),
        select(TicketCounter.last_number)
        .where(TicketCounter.category_id == category_id, TicketCounter.service_day == day)
        .scalar_subquery(),
    )


def _take_state(
    session: Session, category_id: int, day: dt.date, user_id: int | None, key: str | None
) -> TakeState:
    row = session.execute(
        _take_state_statement(),
        {"category_id": category_id, "day": day, "user_id": user_id, "key": key},
    ).one()
    return TakeState(int(row[0] or 0), row[1], row[2], row[3], bool(row[4]), int(row[5] or 0))


@dataclass(frozen=True)
class Issued:
    ticket: Ticket
    created: bool  # False when an Idempotency-Key replay returned the earlier ticket
    # People ahead when it was issued, known for ordinary numbers without another query.
    ahead: int | None = None


def _replayed(session: Session, ticket_id: int) -> Issued:
    return Issued(session.get_one(Ticket, ticket_id), created=False)


def issue_ticket(
    session: Session,
    *,
    category: ServiceCategory,
    user_id: int | None,
    source: TicketSource,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings,
    priority: TicketPriority | None = None,
    due_at: dt.datetime | None = None,
    appointment_id: int | None = None,
    idempotency_key: str | None = None,
    check_open: bool = True,
    enforce_cap: bool = True,
) -> Issued:
    """Issue the next number of `category` today to the citizen `user_id` (None: anonymous).

    Refuses when the hall is closed, the category's daily cap is reached, or the citizen already
    holds an active ticket of the category (that ticket is in the error's details). Appointment
    check-ins pass `priority=TicketPriority.APPOINTMENT`, `due_at` (the slot start) and their
    `appointment_id`; they usually skip the cap (`enforce_cap=False`), the slot having been
    booked within capacity.
    """
    day = halls.local_day(now)
    state = _take_state(session, category.id, day, user_id, idempotency_key)
    if state.replay_id is not None:
        return _replayed(session, state.replay_id)
    if not category.active:
        raise HallClosed("该业务暂停取号")
    if check_open and not halls.is_open(session, category.hall_id, now):
        raise HallClosed()
    if state.holding_id is not None:
        existing = session.get(Ticket, state.holding_id)
        if existing is not None:
            raise AlreadyHoldingTicket(ticket=ticket_summary(existing))
    reason = green_reason(state.birth_date, day, settings, flagged=state.flagged)
    if priority is None:
        priority = TicketPriority.GREEN if reason else TicketPriority.NORMAL
    # Everything but the number is prepared before the counter upsert: its row lock, held until
    # commit, serialises every take of the category, so under it only two inserts remain (no
    # savepoint: a refusal under the lock gives the number back itself). People already ahead
    # decide whether "almost your turn" is news.
    values = numbering.ticket_row(
        hall_id=category.hall_id,
        category_id=category.id,
        issued_category_id=category.id,
        service_day=day,
        user_id=user_id,
        status=TicketStatus.WAITING,
        source=source,
        priority=int(priority),
        due_at=due_at,
        green_reason=reason,
        appointment_id=appointment_id,
        idempotency_key=idempotency_key,
        taken_at=now,
        queue_at=now,
        notified_near=state.queued <= settings.near_notice_ahead,
    )
    transition = {
        "action": "take",
        "from_status": None,
        "to_status": TicketStatus.WAITING,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "window_id": None,
        "at": now,
        "details": {"source": str(source)},
    }
    cap = category.daily_cap if enforce_cap else numbering.NO_CAP
    number, ticket_id = numbering.draw_and_write(
        session,
        category_id=category.id,
        day=day,
        prefix=category.prefix,
        cap=cap,
        ticket=values,
        transition=transition,
    )
    if ticket_id is None:
        numbering.give_back_number(session, category.id, day)
        if number > cap:
            raise CapReached(daily_cap=category.daily_cap)
        again = _take_state(session, category.id, day, user_id, idempotency_key)
        if again.replay_id is not None:
            return _replayed(session, again.replay_id)
        existing = session.get(Ticket, again.holding_id) if again.holding_id else None
        if existing is not None:
            raise AlreadyHoldingTicket(ticket=ticket_summary(existing))
        raise TakeConflict()
    # The row is exactly `values` (creation time aside): the session takes the object as
    # loaded instead of reading back what it just wrote.
    ticket = Ticket(
        id=ticket_id, number=number, display=display_number(category.prefix, number), **values
    )
    make_transient_to_detached(ticket)
    session.add(ticket)
    ahead = None
    if priority == TicketPriority.NORMAL:
        # Everyone queued when the state was read is ahead of an ordinary number, and so are
        # the numbers drawn since (the counter row lock made them commit before ours).
        ahead = state.queued + (number - 1 - state.last_number)
    return Issued(ticket, created=True, ahead=ahead)


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """What a refusal's details say about an existing ticket (no personal data)."""
    return {
        "id": ticket.id,
        "display": ticket.display,
        "status": str(ticket.status),
        "category_id": ticket.category_id,
        "hall_id": ticket.hall_id,
        "service_day": ticket.service_day.isoformat(),
    }


# -- windows -----------------------------------------------------------------------------------


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
    return window


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


def _window_busy(session: Session, window_id: int) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(Ticket.window_id == window_id, Ticket.status.in_(AT_COUNTER))
    ).first()


def _guarded(
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
) -> Ticket:
    """Apply one transition as a guarded UPDATE; IllegalTransition if the ticket moved on."""
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
    _record(session, ticket.id, action, previous, to_status, actor, now, window_id, details)
    session.flush()
    session.refresh(ticket)
    return ticket


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id=ticket_id)
    return ticket


def _hall_ticket(session: Session, window: Window, ticket_id: int) -> Ticket:
    ticket = get_ticket(session, ticket_id)
    if ticket.hall_id != window.hall_id:
        raise TicketNotFound(ticket_id=ticket_id)
    return ticket


def _category_ids(window: Window) -> list[int]:
    return [c.id for c in window.categories]


def call_next(
    session: Session, window: Window, *, actor: Actor, now: dt.datetime, settings: QueueSettings
) -> Ticket:
    """Claim the next ticket for this window: due appointments, green channel, then FIFO."""
    _lock_open_window(session, window)
    if _window_busy(session, window.id) is not None:
        raise WindowBusy()
    day = halls.local_day(now)
    query = (
        select(Ticket)
        .where(
            Ticket.hall_id == window.hall_id,
            Ticket.service_day == day,
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
        session, ticket, window, actor=actor, now=now, settings=settings, action="call"
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
    ticket = _hall_ticket(session, window, ticket_id)
    _lock_open_window(session, window)
    if ticket.category_id not in _category_ids(window) and ticket.target_window_id != window.id:
        raise CategoryNotServed()
    if _window_busy(session, window.id) is not None:
        raise WindowBusy()
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
    action: str,
) -> Ticket:
    _guarded(
        session,
        ticket,
        action=action,
        from_statuses=QUEUED_STATUSES,
        to_status=TicketStatus.CALLED,
        actor=actor,
        now=now,
        values={"window_id": window.id, "called_at": now, "target_window_id": None},
        window_id=window.id,
    )
    _notify_called(session, ticket, window, now)
    _notify_near(session, ticket.category_id, ticket.service_day, now, settings)
    return ticket


def recall(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    version: int | None = None,
) -> Ticket:
    """Call the same ticket again (counted)."""
    ticket = _hall_ticket(session, window, ticket_id)
    return _guarded(
        session,
        ticket,
        action="recall",
        from_statuses=(TicketStatus.CALLED,),
        to_status=TicketStatus.CALLED,
        actor=actor,
        now=now,
        values={"recall_count": Ticket.recall_count + 1, "called_at": now},
        window_id=window.id,
        at_window=window.id,
        version=version,
    )


def _hall_setting(session: Session, hall_id: int, name: str, default: int) -> int:
    profile = session.get(HallProfile, hall_id)
    value = getattr(profile, name, None) if profile is not None else None
    return int(value) if value is not None else default


def mark_no_show(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings,
    version: int | None = None,
) -> Ticket:
    """Mark a called ticket no-show, once it has been recalled the configured number of times."""
    ticket = _hall_ticket(session, window, ticket_id)
    required = _hall_setting(session, window.hall_id, "max_recalls", settings.max_recalls)
    if ticket.status == TicketStatus.CALLED and ticket.recall_count < required:
        raise RecallsNotExhausted(recalls=ticket.recall_count, required=required)
    return _guarded(
        session,
        ticket,
        action="no_show",
        from_statuses=(TicketStatus.CALLED,),
        to_status=TicketStatus.NO_SHOW,
        actor=actor,
        now=now,
        values={"finished_at": now, "window_id": None},
        window_id=window.id,
        at_window=window.id,
        version=version,
        details={"recalls": ticket.recall_count},
    )


def late_return(
    session: Session, ticket: Ticket, *, actor: Actor, now: dt.datetime, settings: QueueSettings
) -> Ticket:
    """A no-show comes back the same day: back in the queue, some places back (过号顺延), once."""
    if ticket.status == TicketStatus.NO_SHOW and ticket.late_return_used:
        raise LateReturnUsed()
    if ticket.service_day != halls.local_day(now):
        raise IllegalTransition("过号顺延仅限当日", ticket_id=ticket.id, status=str(ticket.status))
    places = _hall_setting(
        session, ticket.hall_id, "late_return_places", settings.late_return_places
    )
    order = queued_in_category(session, ticket.category_id, ticket.service_day, now)
    normal = [t for t in order if t.priority == TicketPriority.NORMAL]
    if len(normal) >= places and places > 0:
        # Just behind the N-th person now waiting in the ordinary queue.
        queue_at = normal[places - 1].queue_at + dt.timedelta(microseconds=1)
    else:
        queue_at = now
    return _guarded(
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
            "priority": int(TicketPriority.NORMAL),
            "recall_count": 0,
        },
        details={"places": places},
    )


def start_serving(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    version: int | None = None,
) -> Ticket:
    ticket = _hall_ticket(session, window, ticket_id)
    return _guarded(
        session,
        ticket,
        action="serve",
        from_statuses=(TicketStatus.CALLED,),
        to_status=TicketStatus.SERVING,
        actor=actor,
        now=now,
        values={"serving_started_at": now},
        window_id=window.id,
        at_window=window.id,
        version=version,
    )


def hold(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    version: int | None = None,
) -> Ticket:
    """Suspend service (挂起) while the citizen fetches a document; the window may call others."""
    ticket = _hall_ticket(session, window, ticket_id)
    return _guarded(
        session,
        ticket,
        action="hold",
        from_statuses=(TicketStatus.SERVING,),
        to_status=TicketStatus.HELD,
        actor=actor,
        now=now,
        values={"service_seconds": served_so_far(ticket, now), "serving_started_at": None},
        window_id=window.id,
        at_window=window.id,
        version=version,
    )


def resume(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    version: int | None = None,
) -> Ticket:
    """Resume a held ticket, at the same window."""
    ticket = _hall_ticket(session, window, ticket_id)
    _lock_open_window(session, window)
    if _window_busy(session, window.id) is not None:
        raise WindowBusy()
    return _guarded(
        session,
        ticket,
        action="resume",
        from_statuses=(TicketStatus.HELD,),
        to_status=TicketStatus.SERVING,
        actor=actor,
        now=now,
        values={"serving_started_at": now},
        window_id=window.id,
        at_window=window.id,
        version=version,
    )


def finish(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    matter: str | None,
    actor: Actor,
    now: dt.datetime,
    version: int | None = None,
) -> Ticket:
    """Finish the service, recording the matter handled."""
    ticket = _hall_ticket(session, window, ticket_id)
    return _guarded(
        session,
        ticket,
        action="finish",
        from_statuses=(TicketStatus.SERVING,),
        to_status=TicketStatus.DONE,
        actor=actor,
        now=now,
        values={
            "finished_at": now,
            "matter": matter,
            "service_seconds": served_so_far(ticket, now),
        },
        window_id=window.id,
        at_window=window.id,
        version=version,
        details={"matter": matter} if matter else None,
    )


def transfer(
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    category_id: int | None,
    target_window_id: int | None,
    actor: Actor,
    now: dt.datetime,
    version: int | None = None,
) -> Ticket:
    """Send a ticket to another category or window, keeping its number and original take time."""
    ticket = _hall_ticket(session, window, ticket_id)
    category = halls.get_category(session, category_id or ticket.category_id)
    if category.hall_id != window.hall_id:
        raise CategoryNotServed("只能转到本大厅的业务")
    if target_window_id is not None:
        target = halls.get_window(session, target_window_id)
        if target.hall_id != window.hall_id:
            raise CategoryNotServed("只能转到本大厅的窗口")
        if category.id not in _category_ids(target):
            raise CategoryNotServed("目标窗口不办理该业务")
    if category.id == ticket.category_id and target_window_id is None:
        raise IllegalTransition(
            "请选择其他业务或窗口", ticket_id=ticket.id, status=str(ticket.status)
        )
    return _guarded(
        session,
        ticket,
        action="transfer",
        from_statuses=(*AT_COUNTER, TicketStatus.HELD),
        to_status=TicketStatus.TRANSFERRED,
        actor=actor,
        now=now,
        values={
            "category_id": category.id,
            "target_window_id": target_window_id,
            "window_id": None,
            "queue_at": ticket.taken_at,
            "service_seconds": served_so_far(ticket, now)
            if ticket.status == TicketStatus.SERVING
            else ticket.service_seconds,
            "serving_started_at": None,
            "recall_count": 0,
        },
        window_id=window.id,
        at_window=window.id,
        version=version,
        details={
            "from_category_id": ticket.category_id,
            "to_category_id": category.id,
            "to_window_id": target_window_id,
        },
    )


def cancel(session: Session, ticket: Ticket, *, actor: Actor, now: dt.datetime) -> Ticket:
    """The citizen gives up a ticket not yet at a counter."""
    return _guarded(
        session,
        ticket,
        action="cancel",
        from_statuses=(*QUEUED_STATUSES, TicketStatus.CALLED),
        to_status=TicketStatus.CANCELLED,
        actor=actor,
        now=now,
        values={"finished_at": now, "window_id": None},
    )


def expire_leftovers(session: Session, *, now: dt.datetime, hall_id: int | None = None) -> int:
    """Expire every active ticket of an earlier day, and today's once the hall has closed.

    Run by the job runner every minute, so the common case must be cheap: one query finds the
    halls with active tickets and their oldest day; a hall whose active tickets are all of
    today and which has not closed yet is skipped. Concurrent sweeps split the work (SKIP
    LOCKED on PostgreSQL) and every expiry is a guarded update, so running it twice is harmless.
    """
    today = halls.local_day(now)
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
            )
            .order_by(Ticket.id)
            .with_for_update(skip_locked=True)
        ).all()
        for ticket in leftovers:
            try:
                _guarded(
                    session,
                    ticket,
                    action="expire",
                    from_statuses=ACTIVE_STATUSES,
                    to_status=TicketStatus.EXPIRED,
                    actor=Actor.system(),
                    now=now,
                    values={"finished_at": now, "window_id": None},
                )
                expired += 1
            except IllegalTransition:
                continue  # finished concurrently
    return expired


# -- notifications -----------------------------------------------------------------------------


def _notify_called(session: Session, ticket: Ticket, window: Window, now: dt.datetime) -> None:
    if ticket.user_id is None:
        return
    hall = session.get(Hall, ticket.hall_id)
    outbox.enqueue(
        session,
        user_id=ticket.user_id,
        template_key="queue_called",
        data={
            "character_string1": ticket.display,
            "thing2": (hall.name if hall else "")[:20],
            "thing3": f"{window.number}号窗口",
            "time4": now.astimezone(halls.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
        },
        page=f"pages/queue/ticket?id={ticket.id}",
        dedupe_key=f"queue:ticket:{ticket.id}:called",
        source=("ticket", ticket.id),
        now=now,
    )


def _notify_near(
    session: Session, category_id: int, day: dt.date, now: dt.datetime, settings: QueueSettings
) -> None:
    """Tell the citizens with at most N people ahead, once each."""
    # Every call asks: only the head of the queue is read, however long the queue.
    order = queued_in_category(session, category_id, day, now, first=settings.near_notice_ahead + 1)
    ahead_of = {t.id: ahead for ahead, t in enumerate(order) if not t.notified_near and t.user_id}
    if not ahead_of:
        return
    # Lock only the rows nobody else holds: a ticket another window is claiming right now is
    # skipped (it is being called, or that window notifies it). Waiting here for other windows'
    # locks while holding our own would deadlock two windows calling at once.
    locked = session.scalars(
        select(Ticket)
        .where(
            Ticket.id.in_(list(ahead_of)),
            Ticket.notified_near.is_(False),
            Ticket.status.in_(QUEUED_STATUSES),
        )
        .order_by(Ticket.id)
        .with_for_update(skip_locked=True)
    ).all()
    for ticket in locked:
        assert ticket.user_id is not None
        session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id)
            .values(notified_near=True)
            .execution_options(synchronize_session=False)
        )
        hall = session.get(Hall, ticket.hall_id)
        outbox.enqueue(
            session,
            user_id=ticket.user_id,
            template_key="queue_near",
            data={
                "character_string1": ticket.display,
                "number2": str(ahead_of[ticket.id]),
                "thing3": (hall.name if hall else "")[:20],
            },
            page=f"pages/queue/ticket?id={ticket.id}",
            dedupe_key=f"queue:ticket:{ticket.id}:near",
            source=("ticket", ticket.id),
            now=now,
        )
        session.expire(ticket, ["notified_near"])


# -- hall screen -------------------------------------------------------------------------------


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
    """What the hall screen shows: each window's current number, waiting count per category."""
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

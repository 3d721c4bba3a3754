"""Taking a number: the checks, the green channel, and the number drawn in the ticket's transaction.

Numbers come from the (category, day) counter row, moved in the ticket's own transaction only
once the ticket is written (`numbering.py`): the row lock serialises takes of one category, and
a take that writes nothing leaves the counter as it was. A partial unique index is the last
guard for "one active ticket per citizen and category".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, exists, func, select, text
from sqlalchemy.orm import Session, make_transient_to_detached

from app import calendar
from app.audit.service import Actor
from app.db import built_once
from app.halls import opening
from app.halls import service as halls
from app.halls.errors import CategoryNotFound
from app.halls.models import HallProfile, ServiceCategory
from app.identity import sessions
from app.identity.models import User
from app.organisation.models import Hall
from app.queueing import codes, numbering
from app.queueing.errors import AlreadyHoldingTicket, CapReached, HallClosed, TakeConflict
from app.queueing.green_channel import green_reason
from app.queueing.models import (
    ACTIVE_TICKET_SQL,
    GreenChannelFlag,
    HallCode,
    QueueCount,
    Ticket,
    TicketCounter,
    TicketPriority,
    TicketSource,
    TicketStatus,
)
from app.queueing.numbering import display_number
from app.queueing.settings import QueueSettings


@dataclass(frozen=True)
class TakeState:
    """What a take needs to know before it draws a number, read in one query."""

    queued: int  # people queued in the category today
    holding_id: int | None  # the citizen's active ticket of the category
    replay_id: int | None  # the citizen's ticket taken with this Idempotency-Key
    birth_date: dt.date | None  # from the citizen's real-name identity, for the green channel
    flagged: bool  # the green channel for a recorded disability
    last_number: int  # the category's counter today (0 before the first number)
    # Whether the hall is open at the take's `now`, when read with the rest (a take by hall
    # code); None: not read, `halls.is_open` is asked.
    open_now: bool | None = None


def queued_in_category_count() -> Any:
    """People queued in the category (`category_id`) on `day` (bound parameters): its
    `QueueCount`, which the tickets' triggers keep (NULL before the day's first ticket)."""
    return (
        select(QueueCount.queued)
        .where(QueueCount.category_id == bindparam("category_id"))
        .where(QueueCount.service_day == bindparam("day"))
        .scalar_subquery()
    )


def _take_state_columns() -> tuple[Any, ...]:
    # One statement for all of it, a take being dominated by round trips; each part is an
    # index lookup of a row or two (the queued count is its own row, `queued_in_category_count`).
    # A NULL user or key matches nothing, which is what an anonymous take or one without a key
    # needs.
    category_id: Any = bindparam("category_id")
    day: Any = bindparam("day")
    user_id: Any = bindparam("user_id")
    key: Any = bindparam("key")
    return (
        queued_in_category_count(),
        select(func.min(Ticket.id))
        .where(
            Ticket.user_id == user_id,
            Ticket.category_id == category_id,
            # Unqualified, as in the index; the nearest FROM (tickets) resolves the name.
            text(ACTIVE_TICKET_SQL),
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


@built_once
def _take_state_statement() -> Any:
    return select(*_take_state_columns())


def _state_of(row: Sequence[Any]) -> TakeState:
    return TakeState(int(row[0] or 0), row[1], row[2], row[3], bool(row[4]), int(row[5] or 0))


def _take_state(
    session: Session, category_id: int, day: dt.date, user_id: int | None, key: str | None
) -> TakeState:
    row = session.execute(
        _take_state_statement(),
        {"category_id": category_id, "day": day, "user_id": user_id, "key": key},
    ).one()
    return _state_of(row)


class CategoryRow(NamedTuple):
    """What a take by hall code reads of the category it draws in (`read_hall_code_take`);
    the terminal's take and the check-in pass the `ServiceCategory` itself."""

    id: int
    hall_id: int
    name: str
    prefix: str
    daily_cap: int
    active: bool


@dataclass(frozen=True)
class HallCodeTake:
    """What a take by hall code read before drawing: see `read_hall_code_take`."""

    category: CategoryRow
    hall_name: str
    scan: codes.HallScan
    state: TakeState


_CATEGORY_COLUMNS = tuple(getattr(ServiceCategory, name) for name in CategoryRow._fields)


@built_once
def _hall_code_take_statement(makeup_day: bool) -> Any:
    # The category's columns a take uses and its hall's name (the answer names both: nothing
    # is read after the commit), the printed code with its hall's coordinates (NULL for none
    # or a dynamic code), the take state and whether the hall is open, in one round trip.
    # Columns, not entities: a take needs a handful of values, while every column read costs
    # the driver a description on each execute and every entity the ORM an instance.
    return (
        select(
            *_CATEGORY_COLUMNS,
            Hall.name,
            *codes.printed_code_columns(),
            *_take_state_columns(),
            *opening.open_at_columns(ServiceCategory.hall_id, makeup_day),
            # Last: the caller's login family, asked here instead of in a statement of its own.
            sessions.family_active_column(),
        )
        .select_from(ServiceCategory)
        .join(Hall, Hall.id == ServiceCategory.hall_id)
        .outerjoin(HallCode, HallCode.id == bindparam("code_id"))
        .outerjoin(HallProfile, HallProfile.hall_id == HallCode.hall_id)
        .where(ServiceCategory.id == bindparam("category_id"))
    )


def read_hall_code_take(
    session: Session,
    settings: QueueSettings,
    *,
    category_id: int,
    token: str,
    user_id: int,
    idempotency_key: str | None,
    now: dt.datetime,
    latitude: float | None,
    longitude: float | None,
    family_id: str,
    confirm_family: Callable[[bool], object],
) -> HallCodeTake:
    """A citizen's take by hall code, up to the draw: the category (404 when none), the code
    checked as `codes.verify_hall_token` checks it, for the category's hall, and the take's
    state (for `issue_ticket`, whether the hall is open at `now` included), read in one
    statement.

    The same statement asks whether the caller's login family `family_id` is still active;
    `confirm_family` is given the answer before anything else is checked (it refuses a revoked
    family: `blueprints.authz.confirm_family`)."""
    # One `day` for both: the take's local day is the day whose opening rules apply.
    kind, at_now = opening.instant_values(now)
    # On the session's connection, past the ORM's execution (the statement loads no entity);
    # nothing is pending to flush first: the request has only authenticated its caller.
    row = (
        session.connection()
        .execute(
            _hall_code_take_statement(kind == "makeup"),
            {
                **at_now,
                "category_id": category_id,
                "code_id": codes.printed_code_id(token),
                "user_id": user_id,
                "key": idempotency_key,
                "family_id": family_id,
            },
        )
        .first()
    )
    if row is None:
        # No row to carry the answer: the family is asked on its own, and refused first.
        confirm_family(sessions.is_family_active(session, family_id))
        raise CategoryNotFound(category_id=category_id)
    confirm_family(bool(row[_FAMILY]))
    category = CategoryRow._make(row[:_HALL_NAME])
    scan = codes.scan_from(
        settings,
        token,
        row[_CODE : _CODE + _CODE_WIDTH],
        now=now,
        latitude=latitude,
        longitude=longitude,
        hall_id=category.hall_id,
    )
    state = row[_STATE : _STATE + _STATE_WIDTH]
    opened = opening.open_from(kind, *row[_STATE + _STATE_WIDTH : _FAMILY])
    return HallCodeTake(
        category, row[_HALL_NAME], scan, dataclasses.replace(_state_of(state), open_now=opened)
    )


# Where each part sits in the statement's row.
_HALL_NAME = len(CategoryRow._fields)
_CODE = _HALL_NAME + 1
_CODE_WIDTH = len(codes.printed_code_columns())
_STATE = _CODE + _CODE_WIDTH
_STATE_WIDTH = len(_take_state_columns())
_FAMILY = -1


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
    category: ServiceCategory | CategoryRow,
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
    walk_in_birth_date: dt.date | None = None,
    state: TakeState | None = None,
) -> Issued:
    """Issue the next number of `category` today to the citizen `user_id` (None: anonymous).

    `walk_in_birth_date`: an anonymous citizen's birth date as an authority vouched for it
    (the city's 红棉码), so the elderly get the green channel without an account.

    Refuses when the hall is closed, the category's daily cap is reached, or the citizen already
    holds an active ticket of the category (that ticket is in the error's details). Appointment
    check-ins pass `priority=TicketPriority.APPOINTMENT`, `due_at` (the slot start) and their
    `appointment_id`; they usually skip the cap (`enforce_cap=False`), the slot having been
    booked within capacity. `state`: the take's state when the caller read it with its own
    reads at the same `now` (`read_hall_code_take`).
    """
    day = calendar.local_day(now)
    if state is None:
        state = _take_state(session, category.id, day, user_id, idempotency_key)
    if state.replay_id is not None:
        return _replayed(session, state.replay_id)
    if not category.active:
        raise HallClosed("该业务暂停取号")
    if check_open and not (
        state.open_now
        if state.open_now is not None
        else halls.is_open(session, category.hall_id, now)
    ):
        raise HallClosed()
    if state.holding_id is not None:
        existing = session.get(Ticket, state.holding_id)
        if existing is not None:
            raise AlreadyHoldingTicket(ticket=ticket_summary(existing))
    birth_date = state.birth_date if user_id is not None else walk_in_birth_date
    reason = green_reason(birth_date, day, settings, flagged=state.flagged)
    if priority is None:
        priority = TicketPriority.GREEN if reason else TicketPriority.NORMAL
    # Everything but the number is prepared before the draw: the counter's row lock serialises
    # every take of the category, so under it only the writes remain. People already ahead
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
        "idempotency_key": None,  # the take's own key is the ticket's
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

"""Drawing a number: the category's counter, the ticket and its "take" transition.

A take locks the (category, day) counter row, writes its ticket with the next number, and only
then moves the counter to that number: a ticket that is not written (over the daily cap, or the
citizen's own concurrent take won) leaves the counter where it was, so there is never a number
to give back (no gap, and the unique number per category and day forbids a duplicate). The row
lock serialises every take of the category until the transaction ends, so what runs under it is
kept to the minimum: on PostgreSQL one statement does all of it (data-modifying CTEs), and the
citizen's take runs it in a statement of its own (`blueprints/transactions.py`): the lock is
released when the statement ends, not a round trip later. Elsewhere (SQLite, one writer at a
time anyway) four statements in the caller's transaction.

The statements are built once and run with bound values: building SQLAlchemy expressions anew
would cost a take more than the database does.
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    case,
    cast,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.db import Base, built_once, insert_on_conflict
from app.queueing.models import Ticket, TicketCounter, TicketTransition

# Bound as the transition's own parameters: a ticket has columns of the same names.
TRANSITION_PREFIX = "transition_"
# The cap a take that skips it is held to (appointment check-ins were booked within capacity).
NO_CAP = 2**31 - 1


def display_number(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"


def _table(model: type[Base]) -> Table:
    return typing.cast(Table, model.__table__)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _moving_counter(statement: Any) -> Any:
    """`statement` (an INSERT of a counter row) moves an existing row to the number written."""
    counters = _table(TicketCounter)
    return statement.on_conflict_do_update(
        index_elements=[counters.c.category_id, counters.c.service_day],
        set_={"last_number": statement.excluded.last_number},
    )


@built_once
def _counter_statement(dialect: str) -> Any:
    return _moving_counter(
        insert_on_conflict(dialect)(_table(TicketCounter)).values(
            category_id=bindparam("category_id"),
            service_day=bindparam("service_day"),
            last_number=bindparam("last_number"),
        )
    )


@built_once
def _next_number_statement() -> Any:
    counters = _table(TicketCounter)
    return select(func.coalesce(func.max(counters.c.last_number), 0) + 1).where(
        counters.c.category_id == bindparam("category_id"),
        counters.c.service_day == bindparam("service_day"),
    )


@built_once
def _insert_ticket_statement(dialect: str) -> Any:
    # The partial unique index on active tickets (and the Idempotency-Key's) turn a concurrent
    # take by the same citizen into no row rather than an error that would end the transaction.
    insert_for = insert_on_conflict(dialect)
    tickets = _table(Ticket)
    return insert_for(tickets).on_conflict_do_nothing().returning(tickets.c.id)


@built_once
def _draw_and_write_statement(ticket_columns: tuple[str, ...]) -> Any:
    """PostgreSQL: lock the counter, write the ticket (within the cap) with the next number,
    its transition, and move the counter to the number written, in one statement.

    Returns (the next number, ticket id or NULL when over the cap or in conflict). A take that
    waited for the lock reads the counter as the take before it left it (a row lock in READ
    COMMITTED returns the newest version). Without a counter row (the category's first take of
    the day) there is nothing to lock: two such takes both try number 1, the unique number lets
    one write it, and the other writes nothing (the caller tries once more, the row then made).
    """
    tickets, transitions, counters = _table(Ticket), _table(TicketTransition), _table(TicketCounter)
    category_id: Any = bindparam("category_id")
    day: Any = bindparam("service_day")
    current = (
        select(counters.c.last_number)
        .where(counters.c.category_id == category_id, counters.c.service_day == day)
        .with_for_update()
        .cte("current")
    )
    drawn = select(
        (func.coalesce(select(current.c.last_number).scalar_subquery(), 0) + 1).label("number")
    ).cte("drawn")
    number = drawn.c.number
    digits = cast(number, String)
    display = bindparam("prefix", type_=String) + case(
        (number < 1000, func.lpad(digits, 3, "0")), else_=digits
    )
    issued = (
        pg_insert(tickets)
        .from_select(
            [*ticket_columns, "number", "display"],
            select(
                *(bindparam(name, type_=tickets.c[name].type) for name in ticket_columns),
                number,
                display,
            ).where(number <= bindparam("cap", type_=Integer)),
        )
        .on_conflict_do_nothing()
        .returning(tickets.c.id, tickets.c.number)
        .cte("issued")
    )
    counted = _moving_counter(
        pg_insert(counters).from_select(
            ["category_id", "service_day", "last_number"],
            select(category_id, day, issued.c.number),
        )
    )
    transition_columns = [c.name for c in transitions.c if c.name not in ("id", "ticket_id")]
    logged = insert(transitions).from_select(
        ["ticket_id", *transition_columns],
        select(
            issued.c.id,
            *(
                bindparam(TRANSITION_PREFIX + name, type_=transitions.c[name].type)
                for name in transition_columns
            ),
        ),
    )
    return (
        select(number, issued.c.id)
        .select_from(drawn.outerjoin(issued, true()))
        .add_cte(counted.cte("counted"))
        .add_cte(logged.cte("logged"))
    )


# Written by the draw itself (number, display), by the database (id, created_at).
_NOT_GIVEN = frozenset({"id", "number", "display", "created_at"})


def ticket_row(**given: Any) -> dict[str, Any]:
    """Every ticket column the take writes, read off the table: the values `given`, else the
    column's default, else NULL. The PostgreSQL statement binds each one by name, and the
    session builds the loaded ticket from the same values, so none may be missing."""
    columns = [c for c in _table(Ticket).c if c.name not in _NOT_GIVEN]
    unknown = set(given) - {c.name for c in columns}
    if unknown:
        raise TypeError(f"not ticket columns the take writes: {sorted(unknown)}")
    row: dict[str, Any] = {}
    for column in columns:
        if column.name in given:
            row[column.name] = given[column.name]
        elif isinstance(column.default, ScalarElementColumnDefault):
            row[column.name] = column.default.arg
        else:
            row[column.name] = None
    return row


def draw_and_write(
    session: Session,
    *,
    category_id: int,
    day: dt.date,
    prefix: str,
    cap: int,
    ticket: dict[str, Any],
    transition: dict[str, Any],
) -> tuple[int, int | None]:
    """Write the ticket with the category's next number, and its transition.

    `ticket` holds every ticket column but id, number and display (`ticket_row`); `transition`
    every transition column but id and ticket_id. Returns the number and the new ticket's id,
    or None when nothing was written: the number was over `cap`, or the citizen's own
    concurrent take won. Nothing written, the counter did not move either.
    """
    counter: dict[str, Any] = {"category_id": category_id, "service_day": day}
    if _dialect(session) == "postgresql":
        params = {
            **ticket,
            **{TRANSITION_PREFIX + name: value for name, value in transition.items()},
            **counter,
            "prefix": prefix,
            "cap": cap,
        }
        statement = _draw_and_write_statement(tuple(ticket))
        drawn: Any = session.execute(statement, params).one()
        if drawn[1] is None and drawn[0] <= cap:
            # Lost the race for the category's first number of the day, or to the citizen's
            # own take (which then fails again, the caller says why).
            drawn = session.execute(statement, params).one()
        return int(drawn[0]), drawn[1]
    dialect = _dialect(session)
    number = int(session.execute(_next_number_statement(), counter).scalar_one())
    if number > cap:
        return number, None
    row = {**ticket, "number": number, "display": display_number(prefix, number)}
    ticket_id = session.execute(_insert_ticket_statement(dialect), row).scalar()
    if ticket_id is not None:
        session.execute(_counter_statement(dialect), {**counter, "last_number": number})
        session.execute(insert(_table(TicketTransition)), {**transition, "ticket_id": ticket_id})
    return number, ticket_id

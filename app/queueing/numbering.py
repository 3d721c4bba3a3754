"""Drawing a number: the category's counter, the ticket and its "take" transition.

Numbers come from an upsert of the (category, day) counter row in the ticket's own transaction:
the row lock, held until commit, serialises every take of the category, and a take that gives
up gives its number back under that lock (no gap, no duplicate). What runs under the lock is
therefore kept to the minimum: on PostgreSQL one statement draws the number and writes both
rows (data-modifying CTEs); elsewhere (SQLite, one writer at a time anyway) three statements.

The statements are built once and run with bound values: building SQLAlchemy expressions anew
would cost a take more than the database does.
"""

from __future__ import annotations

import datetime as dt
import functools
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
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.db import Base, insert_on_conflict
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


@functools.cache
def _draw_statement(dialect: str) -> Any:
    insert_for = insert_on_conflict(dialect)
    counters = _table(TicketCounter)
    return (
        insert_for(counters)
        .values(
            category_id=bindparam("category_id"),
            service_day=bindparam("service_day"),
            last_number=1,
        )
        .on_conflict_do_update(
            index_elements=[counters.c.category_id, counters.c.service_day],
            set_={"last_number": counters.c.last_number + 1},
        )
        .returning(counters.c.last_number)
    )


@functools.cache
def _insert_ticket_statement(dialect: str) -> Any:
    # The partial unique index on active tickets (and the Idempotency-Key's) turn a concurrent
    # take by the same citizen into no row rather than an error that would end the transaction.
    insert_for = insert_on_conflict(dialect)
    tickets = _table(Ticket)
    return insert_for(tickets).on_conflict_do_nothing().returning(tickets.c.id)


@functools.cache
def _draw_and_write_statement(ticket_columns: tuple[str, ...]) -> Any:
    """PostgreSQL: draw, write the ticket (within the cap) and its transition, in one statement.

    Returns (number drawn, ticket id or NULL when over the cap or in conflict).
    """
    tickets, transitions = _table(Ticket), _table(TicketTransition)
    drawn = _draw_statement("postgresql").cte("drawn")
    number = drawn.c.last_number
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
        .returning(tickets.c.id)
        .cte("issued")
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
    """Draw the category's next number and write the ticket and its transition.

    `ticket` holds every ticket column but id, number and display (`ticket_row`); `transition` every
    transition column but id and ticket_id. Returns the number and the new ticket's id, or
    None when nothing was written: the number was over `cap`, or the citizen's own concurrent
    take won. The number is then still drawn: `give_back_number` or end the transaction.
    """
    if _dialect(session) == "postgresql":
        params = {
            **ticket,
            **{TRANSITION_PREFIX + name: value for name, value in transition.items()},
            "category_id": category_id,
            "service_day": day,
            "prefix": prefix,
            "cap": cap,
        }
        drawn: Any = session.execute(_draw_and_write_statement(tuple(ticket)), params).one()
        return int(drawn[0]), drawn[1]
    number = int(
        session.execute(
            _draw_statement(_dialect(session)), {"category_id": category_id, "service_day": day}
        ).scalar_one()
    )
    if number > cap:
        return number, None
    row = {**ticket, "number": number, "display": display_number(prefix, number)}
    ticket_id = session.execute(_insert_ticket_statement(_dialect(session)), row).scalar()
    if ticket_id is not None:
        session.execute(insert(_table(TicketTransition)), {**transition, "ticket_id": ticket_id})
    return number, ticket_id


def give_back_number(session: Session, category_id: int, day: dt.date) -> None:
    """Undo this transaction's draw: no gap, as the counter's row lock let nobody draw since."""
    session.execute(
        update(TicketCounter)
        .where(TicketCounter.category_id == category_id, TicketCounter.service_day == day)
        .values(last_number=TicketCounter.last_number - 1)
    )

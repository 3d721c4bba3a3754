"""The queued count a take reads is kept by the tickets' triggers (migration 0028): it follows
every insert, delete and move of a ticket, whoever writes it, and matches the tickets.

It replaced a count of the queue's tickets, which on PostgreSQL cost a heap visit per queued
ticket: under `bench/queue_load.py` (2,000 queued in one category by the end of a run) most of
the database's work per take.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session

from app import calendar, create_app
from app.identity.models import User
from app.migrations_cli import upgrade_database
from app.queueing.demo import QueueHall
from app.queueing.models import (
    QUEUED_STATUSES,
    QueueCount,
    Ticket,
    TicketStatus,
    TicketTransition,
)
from app.queueing.taking import queued_in_category_count

NOW = calendar.local_instant(dt.date(2026, 11, 27), dt.time(10))  # a Friday morning
DAY = calendar.local_day(NOW)


def _kept(session: Session) -> dict[tuple[int, dt.date], int]:
    """The triggers' counts, zeros left out (a count that fell to zero keeps its row)."""
    rows = session.execute(
        select(QueueCount.category_id, QueueCount.service_day, QueueCount.queued)
    )
    return {(category, day): queued for category, day, queued in rows if queued}


def _counted(session: Session) -> dict[tuple[int, dt.date], int]:
    """The queued tickets counted one by one."""
    rows = session.execute(
        select(Ticket.category_id, Ticket.service_day, func.count())
        .where(Ticket.status.in_(QUEUED_STATUSES))
        .group_by(Ticket.category_id, Ticket.service_day)
    )
    return {(category, day): count for category, day, count in rows}


def _move(session: Session, ticket_ids: list[int], **values: object) -> None:
    session.execute(
        update(Ticket)
        .where(Ticket.id.in_(ticket_ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def test_the_count_follows_takes_moves_and_deletes(
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    take_ticket: Callable[..., Ticket],
) -> None:
    qh = create_queue_hall(categories=[("综合业务", "A"), ("社保业务", "B")])
    a, b = qh.categories["A"], qh.categories["B"]
    tickets = [take_ticket(create_user(), a, now=NOW).id for _ in range(6)]
    assert _kept(session) == {(a.id, DAY): 6}

    _move(session, tickets[:2], status=TicketStatus.DONE)  # served: out of the queue
    assert _kept(session) == {(a.id, DAY): 4}
    _move(session, tickets[2:3], status=TicketStatus.CALLED)
    _move(session, tickets[2:3], status=TicketStatus.TRANSFERRED, category_id=b.id)
    assert _kept(session) == {(a.id, DAY): 3, (b.id, DAY): 1}
    _move(
        session, tickets[3:4], status=TicketStatus.TRANSFERRED, category_id=b.id
    )  # queued to queued
    assert _kept(session) == {(a.id, DAY): 2, (b.id, DAY): 2}
    _move(session, tickets[4:5], priority=1)  # not a status, category or day: no move
    _move(session, tickets[4:5], status=TicketStatus.WAITING)  # queued and staying put
    assert _kept(session) == {(a.id, DAY): 2, (b.id, DAY): 2}
    _move(session, tickets[4:5], service_day=DAY + dt.timedelta(days=1))
    assert _kept(session) == {(a.id, DAY): 1, (a.id, DAY + dt.timedelta(days=1)): 1, (b.id, DAY): 2}
    gone = [tickets[5], tickets[0]]
    session.execute(delete(TicketTransition).where(TicketTransition.ticket_id.in_(gone)))
    session.execute(delete(Ticket).where(Ticket.id.in_(gone)))
    assert (
        _kept(session)
        == _counted(session)
        == {
            (a.id, DAY + dt.timedelta(days=1)): 1,
            (b.id, DAY): 2,
        }
    )


def test_the_take_reads_the_kept_count(
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    take_ticket: Callable[..., Ticket],
) -> None:
    qh = create_queue_hall()
    category = qh.categories["A"]
    tickets = [take_ticket(create_user(), category, now=NOW).id for _ in range(5)]
    _move(session, tickets[:3], status=TicketStatus.DONE)

    def read() -> int | None:
        return session.execute(
            select(queued_in_category_count()), {"category_id": category.id, "day": DAY}
        ).scalar_one()

    assert read() == 2
    # Two ahead of the next ordinary number, whatever the counter says.
    issued = take_ticket(create_user(), category, now=NOW)
    assert issued.number == 6
    assert read() == 3
    assert (
        session.execute(
            select(queued_in_category_count()),
            {"category_id": category.id, "day": DAY + dt.timedelta(days=1)},
        ).scalar_one()
        is None
    )  # no ticket that day yet: the take reads it as 0


def test_a_random_walk_of_moves_keeps_the_count_equal_to_the_tickets(
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    take_ticket: Callable[..., Ticket],
) -> None:
    qh = create_queue_hall(categories=[("综合业务", "A"), ("社保业务", "B"), ("税务", "C")])
    categories = list(qh.categories.values())
    pick = random.Random(20261205)
    tickets = [take_ticket(create_user(), pick.choice(categories), now=NOW).id for _ in range(30)]
    for _ in range(120):
        chosen = pick.sample(tickets, pick.randint(1, 4))
        values: dict[str, object] = {"status": pick.choice(list(TicketStatus))}
        if pick.random() < 0.4:
            values["category_id"] = pick.choice(categories).id
        _move(session, chosen, **values)
        assert _kept(session) == _counted(session)


def test_the_migration_counts_the_tickets_already_queued(tmp_path: Path) -> None:
    application: Flask = create_app("testing", DATABASE_URL=f"sqlite:///{tmp_path / 'before.db'}")
    upgrade_database(application, "0027_call_next_idempotency")
    engine = create_engine(application.config["DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO halls (id, code, name, kind) VALUES (1, 'H1', '大厅', 'town')")
        )
        connection.execute(
            text(
                "INSERT INTO service_categories (id, hall_id, name, prefix, daily_cap,"
                " typical_minutes, matters, active, sort_order)"
                " VALUES (1, 1, '综合业务', 'A', 100, 5, '[]', 1, 0)"
            )
        )
        for number, status in enumerate(("waiting", "done", "transferred", "waiting", "called"), 1):
            connection.execute(
                text(
                    "INSERT INTO tickets (hall_id, category_id, issued_category_id, service_day,"
                    " number, display, status, source, priority, taken_at, queue_at,"
                    " recall_count, late_return_used, notified_near, version)"
                    " VALUES (1, 1, 1, :day, :n, :display, :status, 'hall_code', 0, :at, :at,"
                    " 0, 0, 0, 1)"
                ),
                {"day": DAY, "n": number, "display": f"A{number:03d}", "status": status, "at": NOW},
            )
    upgrade_database(application)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT category_id, queued FROM queue_counts")).all() == [
            (1, 3)
        ]
        connection.execute(text("UPDATE tickets SET status = 'done' WHERE number = 1"))
        assert connection.execute(text("SELECT queued FROM queue_counts")).scalar_one() == 2
    engine.dispose()

"""A take counts the people queued in its category today from the queued tickets alone.

The count asked for `status IN ('waiting', 'transferred')`; PostgreSQL 15 read that as a filter
over `ix_tickets_category_day_status`, not as part of the index condition, so each take walked
every ticket of the category's day, served and cancelled ones too (a heap fetch each): by the
afternoon of a busy day, thousands of entries for a queue of a few dozen.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import calendar
from app.identity.models import User
from app.queueing.demo import QueueHall
from app.queueing.models import Ticket, TicketStatus
from app.queueing.taking import queued_in_category_count
from tests.support.database import statements_sent

NOW = calendar.local_instant(dt.date(2026, 11, 27), dt.time(10))  # a Friday morning
INDEX = "ix_tickets_category_day_status"


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _count_plan(session: Session, category_id: int, day: dt.date) -> list[str]:
    """How the count reads its index: each index condition (and filter) on PostgreSQL, each
    search's detail on SQLite. The statement is explained as the driver was sent it."""
    engine = session.get_bind()
    with statements_sent(engine) as sent:
        session.execute(
            select(queued_in_category_count()), {"category_id": category_id, "day": day}
        )
    statement, parameters = sent[-1]
    connection = session.connection()
    if engine.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test's tables are tiny
        raw = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        plan = raw.scalar_one()
        plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
        return [
            f"{node.get('Index Cond', '')} | filter: {node.get('Filter', '')}"
            for node in _plan_nodes(plan)
            if node.get("Index Name") == INDEX
        ]
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return [row[-1] for row in rows if INDEX in row[-1]]


def test_the_queued_count_reads_only_queued_tickets(
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    take_ticket: Callable[..., Ticket],
) -> None:
    qh = create_queue_hall()
    category = qh.categories["A"]
    tickets = [take_ticket(create_user(), category, now=NOW) for _ in range(5)]
    session.execute(
        update(Ticket)
        .where(Ticket.id.in_([t.id for t in tickets[:3]]))
        .values(status=TicketStatus.DONE)
        .execution_options(synchronize_session=False)
    )
    day = calendar.local_day(NOW)

    count = session.execute(
        select(queued_in_category_count()), {"category_id": category.id, "day": day}
    ).scalar_one()
    plan = _count_plan(session, category.id, day)

    assert count == 2
    assert plan, f"the count does not read {INDEX}"
    for step in plan:
        assert "status" in step.split("|")[0], f"status is not in the index condition: {step}"
        assert "status" not in step.partition("filter:")[2], f"status filtered after: {step}"

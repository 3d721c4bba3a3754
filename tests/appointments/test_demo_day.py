"""The demo day: slots for halls with categories and a replayed day of district tickets."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.demo import seed_queue_day
from app.appointments.models import AppointmentSlot
from app.queue_stats import service as stats
from app.queue_stats.service import GroupBy
from app.queueing.models import Ticket, TicketCounter, TicketStatus
from tests.factories.appointments import HallSetup, local

NOW = local(2026, 11, 4, 15, 30)  # a Wednesday afternoon


def test_the_demo_day_has_a_realistic_mix_and_is_idempotent(
    session: Session, appointment_hall: Callable[..., HallSetup]
) -> None:
    hall = appointment_hall(code="DEMO-D00")

    day = seed_queue_day(session, now=NOW, hall_code="DEMO-D00", rng=random.Random(7))
    again = seed_queue_day(session, now=NOW, hall_code="DEMO-D00", rng=random.Random(7))

    assert day.tickets > 30 and again.tickets == 0
    assert day.slots > 0 and again.slots == 0
    assert session.scalar(
        select(func.count()).select_from(AppointmentSlot).where(AppointmentSlot.hall_id == hall.id)
    )
    assert day.days == [dt.date(2026, 11, 3), dt.date(2026, 11, 4)]
    tickets = session.scalars(
        select(Ticket).where(Ticket.hall_id == hall.id, Ticket.service_day == NOW.date())
    ).all()
    statuses = Counter(t.status for t in tickets)
    assert statuses[TicketStatus.DONE] > len(tickets) / 2
    assert statuses[TicketStatus.NO_SHOW] > 0
    assert statuses[TicketStatus.WAITING] > 0
    assert statuses[TicketStatus.SERVING] + statuses[TicketStatus.CALLED] >= 1
    at_counter = Counter(
        t.window_id for t in tickets if t.status in (TicketStatus.CALLED, TicketStatus.SERVING)
    )
    assert all(n == 1 for n in at_counter.values())
    for category in hall.categories:
        numbers = sorted(t.number for t in tickets if t.category_id == category.id)
        assert numbers == list(range(1, len(numbers) + 1))
        counter = session.get(TicketCounter, (category.id, NOW.date()))
        assert counter is not None and counter.last_number == len(numbers)
    assert all(t.taken_at <= t.called_at for t in tickets if t.called_at)  # type: ignore[operator]

    rows = stats.compute(
        session, hall.id, start=NOW.date(), end=NOW.date(), group_by=GroupBy.CATEGORY
    )
    assert sum(r.served for r in rows) == statuses[TicketStatus.DONE]
    assert all(r.service_mean_seconds for r in rows)

    yesterday = session.scalars(
        select(Ticket).where(Ticket.hall_id == hall.id, Ticket.service_day == dt.date(2026, 11, 3))
    ).all()
    finished = {TicketStatus.DONE, TicketStatus.NO_SHOW, TicketStatus.EXPIRED}
    assert yesterday and all(t.status in finished for t in yesterday)

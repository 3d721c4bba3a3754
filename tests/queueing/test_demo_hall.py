"""The demo's round-the-clock hall: the queue can be tried at any hour, with a wait estimate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.halls import service as halls
from app.identity.models import StaffAccount, StaffRole, User
from app.queueing import forecast
from app.queueing.demo import open_round_the_clock_hall, round_the_clock_hall
from app.queueing.models import TicketSource
from app.queueing.settings import QueueSettings
from app.queueing.taking import issue_ticket

MIDNIGHT_SUNDAY = dt.datetime(2026, 11, 28, 16, 30, tzinfo=dt.UTC)  # Sunday 00:30 in Panyu


def test_the_demo_hall_takes_numbers_at_midnight_on_a_sunday_and_estimates_the_wait(
    session: Session,
    create_staff: Callable[..., StaffAccount],
    create_user: Callable[..., User],
    queue_settings: QueueSettings,
) -> None:
    hall = round_the_clock_hall(session)
    assert round_the_clock_hall(session).id == hall.id  # found again, not duplicated
    clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, hall.id, None)])
    open_round_the_clock_hall(session, hall, clerk_id=clerk.id)
    open_round_the_clock_hall(session, hall, clerk_id=clerk.id)  # idempotent

    assert halls.is_open(session, hall.id, MIDNIGHT_SUNDAY)
    (category, _) = halls.list_categories(session, hall.id)
    tickets = [
        issue_ticket(
            session,
            category=category,
            user_id=create_user().id,
            source=TicketSource.HALL_CODE,
            actor=Actor("user", None),
            now=MIDNIGHT_SUNDAY,
            settings=queue_settings,
        ).ticket
        for _ in range(4)
    ]
    estimate = forecast.estimate_for(session, tickets[-1], now=MIDNIGHT_SUNDAY)
    assert estimate.wait_seconds is not None and estimate.open_windows == 2
    assert len(halls.list_windows(session, hall.id)) == 3

"""The estimated wait: rolling service times, the ticket at the counter, shared windows."""

from __future__ import annotations

import datetime as dt

import pytest

from app.audit.service import Actor
from app.halls.models import WindowStatus
from app.queueing import forecast, windows
from app.queueing.models import TicketPriority
from app.queueing.order import position_of
from tests.factories.queueing import window_action

CLERK = Actor("staff", None)
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)  # Friday 10:00 in Panyu
MIN = dt.timedelta(minutes=1)


def _serve(session, window, settings, *, now, minutes):
    """Call the next ticket at `now`, serve it and finish it `minutes` later."""
    ticket = windows.call_next(session, window, actor=CLERK, now=now, settings=settings)
    window_action("serve", session, window, ticket.id, actor=CLERK, now=now)
    window_action(
        "finish", session, window, ticket.id, matter=None, actor=CLERK, now=now + minutes * MIN
    )
    return ticket


def test_typical_minutes_first_then_the_rolling_mean_shrunk_towards_them(
    create_queue_hall, create_user, take_ticket, session, queue_settings
):
    qh = create_queue_hall(windows=[(2, "A")], typical_minutes=10)
    tickets = [
        take_ticket(create_user(), qh.categories["A"], now=NOW + dt.timedelta(seconds=i))
        for i in range(4)
    ]
    est = forecast.estimate_for(session, tickets[3], now=NOW)
    # The idle window calls the first at once, then one typical service per person.
    assert est.ahead == 3 and est.wait_seconds == 3 * 600
    _serve(session, qh.windows[2], queue_settings, now=NOW, minutes=4)
    est = forecast.estimate_for(session, tickets[3], now=NOW + 4 * MIN)
    # One 4-minute service weighs against three typical ones.
    mean = (240 + forecast.PRIOR_WEIGHT * 600) / (1 + forecast.PRIOR_WEIGHT)
    assert est.ahead == 2 and est.mean_service_seconds == pytest.approx(mean)
    assert est.wait_seconds == pytest.approx(2 * mean, abs=1)


def test_rolling_mean_follows_the_last_services(
    create_queue_hall, create_user, take_ticket, session, queue_settings
):
    qh = create_queue_hall(windows=[(2, "A")], typical_minutes=10)
    category = qh.categories["A"]
    for i in range(forecast.ROLLING_MEAN_TICKETS + 5):
        take_ticket(create_user(), category, now=NOW + dt.timedelta(seconds=i))
    at = NOW
    for i in range(forecast.ROLLING_MEAN_TICKETS + 5):
        minutes = 30 if i < 5 else 5  # the five oldest fall out of the window
        _serve(session, qh.windows[2], queue_settings, now=at, minutes=minutes)
        at += minutes * MIN
    n = forecast.ROLLING_MEAN_TICKETS
    expected = (n * 300 + forecast.PRIOR_WEIGHT * 600) / (n + forecast.PRIOR_WEIGHT)
    mean = forecast.mean_service_seconds(session, category, NOW.date())
    assert mean == pytest.approx(expected)


def test_the_remaining_time_of_the_ticket_being_served_counts(
    create_queue_hall, create_user, take_ticket, session, queue_settings
):
    qh = create_queue_hall(windows=[(2, "A")], typical_minutes=10)
    window = qh.windows[2]
    first = take_ticket(create_user(), qh.categories["A"], now=NOW)
    second = take_ticket(create_user(), qh.categories["A"], now=NOW + MIN)
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=queue_settings)
    window_action("serve", session, window, first.id, actor=CLERK, now=NOW)
    est = forecast.estimate_for(session, second, now=NOW + 4 * MIN)
    assert est.ahead == 0 and est.wait_seconds == 6 * 60
    # Past the mean the service is still expected to take a little longer, not zero.
    est = forecast.estimate_for(session, second, now=NOW + 20 * MIN)
    assert est.wait_seconds == int(forecast.MIN_RESIDUAL_FRACTION * 600)


def test_a_shared_window_serves_the_other_category_first_when_it_came_first(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(1, "AB")], typical_minutes=10)
    take_ticket(create_user(), qh.categories["B"], now=NOW)
    take_ticket(create_user(), qh.categories["B"], now=NOW + MIN)
    mine = take_ticket(create_user(), qh.categories["A"], now=NOW + 2 * MIN)
    est = forecast.estimate_for(session, mine, now=NOW + 2 * MIN)
    # Nobody is ahead in category A, yet the only window first serves both B tickets.
    assert est.ahead == 0 and est.wait_seconds == 2 * 600


def test_an_appointment_falling_due_jumps_ahead_in_the_estimate(
    create_queue_hall, create_user, take_ticket, session, queue_settings
):
    qh = create_queue_hall(windows=[(2, "A")], typical_minutes=10)
    window = qh.windows[2]
    serving = take_ticket(create_user(), qh.categories["A"], now=NOW)
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=queue_settings)
    window_action("serve", session, window, serving.id, actor=CLERK, now=NOW)
    mine = take_ticket(create_user(), qh.categories["A"], now=NOW + MIN)
    take_ticket(
        create_user(),
        qh.categories["A"],
        now=NOW + 2 * MIN,
        priority=TicketPriority.APPOINTMENT,
        due_at=NOW + 5 * MIN,
    )
    est = forecast.estimate_for(session, mine, now=NOW + 2 * MIN)
    # Next in line now, but when the window frees up (NOW+10) the appointment is due.
    assert est.ahead == 0 and est.wait_seconds == (20 - 2) * 60


def test_no_estimate_without_an_open_window_for_the_category(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(2, "A"), (3, "B")])
    qh.windows[2].status = WindowStatus.PAUSED
    session.flush()
    mine = take_ticket(create_user(), qh.categories["A"], now=NOW)
    est = forecast.estimate_for(session, mine, now=NOW)
    assert est.ahead == 0 and est.wait_seconds is None and est.open_windows == 0


def test_a_window_left_open_without_a_clerk_gives_no_estimate(
    create_queue_hall, create_user, take_ticket, session
):
    # What a hall looks like at midnight when nobody closed the window: ten people ahead
    # would otherwise be promised a few minutes' wait.
    qh = create_queue_hall(windows=[(2, "A")])
    qh.windows[2].clerk_id = None
    session.flush()
    for _ in range(10):
        take_ticket(create_user(), qh.categories["A"], now=NOW)
    mine = take_ticket(create_user(), qh.categories["A"], now=NOW)
    est = forecast.estimate_for(session, mine, now=NOW)
    assert est.ahead == 10 and est.wait_seconds is None and est.open_windows == 0


def test_forecast_respects_transfers_to_a_window():
    at = NOW
    queued = [
        forecast.QueuedTicket(1, 10, 0, None, at, 2),  # transferred to window 2 only
        forecast.QueuedTicket(2, 10, 0, None, at + MIN, None),
    ]
    windows = [(1, frozenset({10}), at), (2, frozenset({10}), at + 5 * MIN)]
    # Window 1 cannot take ticket 1, so it calls ticket 2 at once; ticket 1 waits for window 2.
    replayed = forecast.replay(windows, queued, {10: 600.0}, at)
    assert replayed.call_in == {2: 0, 1: 300}


def test_the_estimate_counts_the_same_people_ahead_as_the_position(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(1, "AB")])
    a, b = qh.categories["A"], qh.categories["B"]
    tickets = [
        take_ticket(create_user(), a, now=NOW),
        take_ticket(create_user(), b, now=NOW + MIN),
        take_ticket(create_user(), a, now=NOW + 2 * MIN, priority=TicketPriority.GREEN),
        take_ticket(
            create_user(),
            a,
            now=NOW + 3 * MIN,
            priority=TicketPriority.APPOINTMENT,
            due_at=NOW + 4 * MIN,
        ),
        take_ticket(create_user(), a, now=NOW + 5 * MIN),
    ]
    for at in (NOW + 3 * MIN, NOW + 5 * MIN):
        for ticket in tickets:
            est = forecast.estimate_for(session, ticket, now=at)
            assert est.ahead == position_of(session, ticket, now=at)

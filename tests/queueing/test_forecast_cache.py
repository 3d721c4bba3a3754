"""Answering estimates from a hall's forecast kept a few seconds (what busy halls do)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from app.audit.service import Actor
from app.queueing import codes, forecast, windows
from app.queueing.demo import HALL_LAT, HALL_LNG
from app.queueing.forecast import ForecastCache, estimate_for, forecast_hall

CLERK = Actor("staff", None)
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)  # Friday 10:00 in Panyu
SECOND = dt.timedelta(seconds=1)
HERE = {"latitude": HALL_LAT, "longitude": HALL_LNG}


def test_a_forecast_is_reused_until_it_is_too_old(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(1, "A")], typical_minutes=10)
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    cache = ForecastCache(max_age_seconds=5)
    first = cache.get(session, ticket.hall_id, ticket.service_day, NOW)
    assert cache.get(session, ticket.hall_id, ticket.service_day, NOW + 5 * SECOND) is first
    assert cache.get(session, ticket.hall_id, ticket.service_day, NOW + 6 * SECOND) is not first
    second = cache.get(session, ticket.hall_id, ticket.service_day, NOW + 6 * SECOND)
    # Requests a moment apart share a forecast whichever of them made it.
    assert cache.get(session, ticket.hall_id, ticket.service_day, NOW + 2 * SECOND) is second
    assert cache.get(session, ticket.hall_id, ticket.service_day, NOW) is not second


def test_numbers_taken_after_the_forecast_get_the_wait_a_fresh_replay_gives(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(1, "A")], typical_minutes=10)
    a = qh.categories["A"]
    for i in range(3):
        take_ticket(create_user(), a, now=NOW - (3 - i) * SECOND)
    cache = ForecastCache(max_age_seconds=60)
    cache.get(session, qh.hall.id, NOW.date(), NOW)  # before the next two numbers exist
    later = [take_ticket(create_user(), a, now=NOW + i * SECOND) for i in (1, 2)]
    at = NOW + 3 * SECOND
    cached = [estimate_for(session, t, now=at, forecasts=cache) for t in later]
    fresh = [estimate_for(session, t, now=at) for t in later]
    assert [e.ahead for e in cached] == [e.ahead for e in fresh] == [3, 4]
    # The window was idle at the forecast: it counts from then, 3 seconds earlier.
    assert [e.wait_seconds for e in fresh] == [1800, 2400]
    assert [e.wait_seconds for e in cached] == [1797, 2397]


def test_positions_are_counted_afresh_while_the_wait_comes_from_the_kept_forecast(
    create_queue_hall, create_user, take_ticket, session, queue_settings
):
    qh = create_queue_hall(windows=[(1, "A")], typical_minutes=10)
    tickets = [
        take_ticket(create_user(), qh.categories["A"], now=NOW + i * SECOND) for i in range(3)
    ]
    cache = ForecastCache(max_age_seconds=60)
    before = estimate_for(session, tickets[2], now=NOW + 3 * SECOND, forecasts=cache)
    assert before.ahead == 2
    windows.call_next(
        session, qh.windows[1], actor=CLERK, now=NOW + 4 * SECOND, settings=queue_settings
    )
    after = estimate_for(session, tickets[2], now=NOW + 10 * SECOND, forecasts=cache)
    assert after.ahead == 1
    # The kept forecast already expected the first call: its wait just counts down.
    assert after.wait_seconds == before.wait_seconds - 7


def test_the_take_response_estimates_from_the_kept_forecast(
    app,
    client,
    session,
    create_queue_hall,
    create_user,
    citizen_headers,
    queue_settings,
    monkeypatch,
):
    qh = create_queue_hall(windows=[(2, "A"), (3, "B")], typical_minutes=10)
    code = codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None)
    body = {"code": codes.printed_token(queue_settings, code), "category_id": qh.categories["A"].id}
    replays = []

    def counted(session, hall_id, day, now):
        replays.append(hall_id)
        return forecast_hall(session, hall_id, day, now)

    monkeypatch.setattr(forecast, "forecast_hall", counted)
    monkeypatch.setattr(app.extensions["queueing"], "forecasts", ForecastCache(max_age_seconds=60))
    taken = [
        client.post(
            "/api/v1/queue/tickets",
            json={**body, **HERE},
            headers=citizen_headers(create_user()),
        ).json
        for _ in range(3)
    ]
    # The first take replayed the hall; the next two were answered from that forecast.
    assert [t["ahead"] for t in taken] == [0, 1, 2]
    assert [t["estimated_wait_minutes"] for t in taken] == [0, 10, 20]
    assert replays == [qh.hall.id]


def test_while_a_hall_is_replayed_others_answer_from_the_forecast_it_replaces(
    create_queue_hall, create_user, take_ticket, session, monkeypatch
):
    qh = create_queue_hall(windows=[(1, "A")], typical_minutes=10)
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    cache = ForecastCache(max_age_seconds=5)
    old = cache.get(session, ticket.hall_id, ticket.service_day, NOW)
    replaying, release = threading.Event(), threading.Event()

    def slow_replay(session, hall_id, day, now):
        replaying.set()
        release.wait(timeout=10)
        return dataclasses.replace(old, at=now)

    monkeypatch.setattr(forecast, "forecast_hall", slow_replay)
    later = NOW + 10 * SECOND
    with ThreadPoolExecutor(1) as pool:
        replacing = pool.submit(cache.get, session, ticket.hall_id, ticket.service_day, later)
        assert replaying.wait(timeout=10)
        # Meanwhile another request does not wait: it gets the forecast being replaced.
        assert cache.get(session, ticket.hall_id, ticket.service_day, later) is old
        release.set()
        new = replacing.result(timeout=10)
    assert new.at == later
    assert cache.get(session, ticket.hall_id, ticket.service_day, later) is new

"""Demo data for `make run`: appointment slots for every hall with categories, and a
realistic day of tickets in the district centre (done, no-show, serving, waiting), so the
statistics, the hall screen and the estimated waits have something to show."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments import service
from app.appointments.rules import AppointmentRules
from app.calendar import LOCAL_TZ, local_day, local_instant
from app.halls.models import ServiceCategory, Window, WindowStatus
from app.halls.service import hours_on
from app.organisation.models import Hall
from app.queueing.models import (
    Ticket,
    TicketCounter,
    TicketSource,
    TicketStatus,
    TicketTransition,
)

DISTRICT_CENTRE = "PY-D00"
DEFAULT_HOURS = ((dt.time(9, 0), dt.time(12, 0)), (dt.time(13, 30), dt.time(17, 0)))
# Arrivals by local hour, relative to what the open windows can serve: the morning rush
# outruns them (queues grow), the lunch lull lets them catch up, then the afternoon wave.
LOAD_BY_HOUR = {9: 1.1, 10: 1.25, 11: 0.9, 12: 0.2, 13: 0.5, 14: 1.1, 15: 1.0, 16: 0.6}
NO_SHOW_RATE = 0.05
CALL_TO_SERVE = dt.timedelta(seconds=45)  # walking to the window
NO_SHOW_AFTER = dt.timedelta(minutes=2)  # recalls, then 过号


@dataclass
class _Desk:
    window: Window
    category_ids: set[int]
    free_at: dt.datetime
    used: bool = False


@dataclass
class QueueDay:
    days: list[dt.date] = field(default_factory=list)  # the days replayed
    tickets: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    slots: int = 0


def seed_queue_day(
    session: Session,
    *,
    now: dt.datetime,
    rules: AppointmentRules | None = None,
    hall_code: str = DISTRICT_CENTRE,
    rng: random.Random | None = None,
) -> QueueDay:
    """Open appointment slots for every hall with categories, and replay `hall_code`'s queue:
    its last open day before today in full (statistics), and today up to `now` when it is
    open (the hall screen, live waits). Idempotent: a day that has tickets is left alone."""
    rules = rules or AppointmentRules()
    rng = rng or random.Random(2026)  # noqa: S311 (repeatable demo data)  # nosec B311  # repeatable demo data, never a secret
    result = QueueDay()
    for hall_id in session.scalars(select(ServiceCategory.hall_id).distinct()).all():
        result.slots += service.open_slots(session, hall_id, rules=rules, now=now)
    hall = session.scalars(select(Hall).where(Hall.code == hall_code)).first()
    if hall is None:
        return result
    today = local_day(now)
    previous = next(
        (
            day
            for day in (today - dt.timedelta(days=n) for n in range(1, 15))
            if hours_on(session, hall.id, day)
        ),
        today - dt.timedelta(days=1),
    )
    end_of_previous = local_instant(previous + dt.timedelta(days=1), dt.time(0, 0))
    for day, until, live in ((previous, end_of_previous, False), (today, now, True)):
        intervals = hours_on(session, hall.id, day) or (() if live else DEFAULT_HOURS)
        if not intervals or _has_tickets(session, hall.id, day):
            continue
        if _replay_day(session, hall, day, list(intervals), result, now=until, live=live, rng=rng):
            result.days.append(day)
    return result


def _has_tickets(session: Session, hall_id: int, day: dt.date) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.hall_id == hall_id, Ticket.service_day == day)
        )
    )


def _arrivals(
    intervals: Any, day: dt.date, until: dt.datetime, per_minute: float, rng: random.Random
) -> list[dt.datetime]:
    moments = []
    for opens, closes in intervals:
        start, end = local_instant(day, opens), min(local_instant(day, closes), until)
        moment = start
        while moment < end:
            rate = per_minute * LOAD_BY_HOUR.get(moment.astimezone(LOCAL_TZ).hour, 0.5)
            moment += dt.timedelta(seconds=rng.expovariate(rate / 60.0))
            if moment < end:
                moments.append(moment)
    return moments


def _service_time(category: ServiceCategory, rng: random.Random) -> dt.timedelta:
    # Service times are right-skewed: most are quick, a few take three times as long.
    mean = category.typical_minutes * 60
    sigma = 0.5
    seconds = rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma)
    return dt.timedelta(seconds=max(60.0, min(seconds, mean * 4)))


def _replay_day(
    session: Session,
    hall: Hall,
    day: dt.date,
    intervals: list[tuple[dt.time, dt.time]],
    result: QueueDay,
    *,
    now: dt.datetime,
    live: bool,
    rng: random.Random,
) -> int:
    """Replay `day` up to `now`; a past day (not `live`) ends with its leftovers expired."""
    categories = list(
        session.scalars(
            select(ServiceCategory).where(
                ServiceCategory.hall_id == hall.id, ServiceCategory.active.is_(True)
            )
        )
    )
    windows = list(session.scalars(select(Window).where(Window.hall_id == hall.id)))
    if not categories or not windows:
        return 0
    first_open = local_instant(day, intervals[0][0])
    # Windows stop calling at closing time; whoever is still waiting then expires.
    last_call = min(now, local_instant(day, intervals[-1][1]))
    desks = [_Desk(w, {c.id for c in w.categories}, first_open) for w in windows if w.categories]
    # Each window splits its time among its categories; a category's share of the arrivals
    # follows the service it gets, so every queue is busy and none runs away.
    typical = {c.id: c.typical_minutes for c in categories}
    capacity = {c.id: 0.0 for c in categories}
    for desk in desks:
        served = [i for i in desk.category_ids if i in typical]
        for category_id in served:
            capacity[category_id] += 1.0 / (typical[category_id] * len(served))
    weights = [capacity[c.id] for c in categories]
    if not sum(weights):
        return 0
    numbers: dict[int, int] = {}
    for taken_at in _arrivals(intervals, day, now, sum(weights), rng):
        category = rng.choices(categories, weights)[0]
        if numbers.get(category.id, 0) >= category.daily_cap:
            continue
        numbers[category.id] = number = numbers.get(category.id, 0) + 1
        ticket = Ticket(
            hall_id=hall.id,
            category_id=category.id,
            issued_category_id=category.id,
            service_day=day,
            number=number,
            display=f"{category.prefix}{number:03d}",
            user_id=None,
            status=TicketStatus.WAITING,
            source=rng.choice(
                [TicketSource.HALL_CODE, TicketSource.DYNAMIC_CODE, TicketSource.TERMINAL]
            ),
            priority=0,
            taken_at=taken_at,
            queue_at=taken_at,
            recall_count=0,
            late_return_used=False,
            notified_near=False,
            version=1,
        )
        session.add(ticket)
        history: list[Any] = [("take", None, TicketStatus.WAITING, taken_at, None)]
        serving = [d for d in desks if category.id in d.category_ids]
        chosen = min(serving, key=lambda d: d.free_at) if serving else None
        if chosen is not None:
            called_at = max(taken_at, chosen.free_at)
            if called_at < last_call:
                chosen.used = True
                _serve(ticket, chosen, category, called_at, history, now=now, rng=rng)
        if not live and ticket.status == TicketStatus.WAITING:
            ticket.status = TicketStatus.EXPIRED
            history.append(("expire", TicketStatus.WAITING, TicketStatus.EXPIRED, last_call, None))
        session.flush()
        session.add_all(
            TicketTransition(
                ticket_id=ticket.id,
                action=action,
                from_status=before.value if before else None,
                to_status=after.value,
                actor_kind="system",
                actor_id=None,
                window_id=window_id,
                at=at,
                details={"demo": True},
            )
            for action, before, after, at, window_id in history
        )
        result.tickets += 1
        result.by_status[ticket.status.value] = result.by_status.get(ticket.status.value, 0) + 1
    for category_id, last in numbers.items():
        session.merge(TicketCounter(category_id=category_id, service_day=day, last_number=last))
    for desk in desks:
        if live and desk.used:
            desk.window.status = WindowStatus.OPEN
            desk.window.status_changed_at = first_open
    session.flush()
    return sum(numbers.values())


def _serve(
    ticket: Ticket,
    desk: _Desk,
    category: ServiceCategory,
    called_at: dt.datetime,
    history: list[Any],
    *,
    now: dt.datetime,
    rng: random.Random,
) -> None:
    window_id = desk.window.id
    ticket.status, ticket.window_id, ticket.called_at = TicketStatus.CALLED, window_id, called_at
    history.append(("call", TicketStatus.WAITING, TicketStatus.CALLED, called_at, window_id))
    if rng.random() < NO_SHOW_RATE:
        desk.free_at = called_at + NO_SHOW_AFTER
        if desk.free_at <= now:
            ticket.status, ticket.finished_at = TicketStatus.NO_SHOW, desk.free_at
            ticket.recall_count = 2
            history.append(
                ("no_show", TicketStatus.CALLED, TicketStatus.NO_SHOW, desk.free_at, window_id)
            )
        return
    started = called_at + CALL_TO_SERVE
    finished = started + _service_time(category, rng)
    desk.free_at = finished
    if started > now:
        return  # called, walking to the window
    ticket.status, ticket.serving_started_at = TicketStatus.SERVING, started
    history.append(("serve", TicketStatus.CALLED, TicketStatus.SERVING, started, window_id))
    if finished > now:
        return
    ticket.status, ticket.finished_at = TicketStatus.DONE, finished
    ticket.service_seconds = (finished - started).total_seconds()
    matter = (category.matters or [None])[0]
    ticket.matter = matter[:128] if isinstance(matter, str) else None
    history.append(("finish", TicketStatus.SERVING, TicketStatus.DONE, finished, window_id))

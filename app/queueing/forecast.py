"""When a queued ticket will be called: today's service times, the hall's call order replayed.

A forecast replays `call_next` for a whole hall once: the open windows, when each becomes free
(the remaining time of the ticket it holds), and every queued ticket in call order, each taking
the window for its category's expected occupancy. A window serving several categories thus
gives each the share the queue itself dictates rather than an even split, and appointments
jump the queue once due. The replay gives every queued ticket its expected call time and every
category its tail (when a number taken now would be called).

The replay reads the hall's whole queue, and hundreds of phones in a busy hall poll their
place: a process may keep each hall's forecast for a few seconds (`ForecastCache`) and answer
from it meanwhile. Positions are always counted afresh; only the wait is up to that old.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.halls.models import ServiceCategory, Window, WindowCategory, WindowStatus
from app.queueing.models import (
    AT_COUNTER,
    QUEUED_STATUSES,
    Ticket,
    TicketPriority,
    TicketStatus,
    served_so_far,
)
from app.queueing.order import position_of, rank_at

ROLLING_MEAN_TICKETS = 20
# The configured typical minutes count as this many observations in the rolling mean, so the
# first few services of the day (the shortest finish first) do not swing every estimate.
PRIOR_WEIGHT = 3
# A call that took longer than this to reach the counter was a hold (the window served others
# meanwhile), not a walk to the window: it does not count towards the call-to-serve gap.
MAX_CALL_GAP_SECONDS = 600.0
# A service already past the mean is not about to end this instant: expect at least this
# fraction of a mean service still to go.
MIN_RESIDUAL_FRACTION = 0.25


# -- service times -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceTime:
    """How long a window is taken by one ticket of a category, learnt from today's services."""

    service_seconds: float  # at the counter (serving), rolling mean shrunk towards typical
    call_gap_seconds: float  # from the call until serving starts
    observed: int  # done tickets the figures come from

    @property
    def occupancy_seconds(self) -> float:
        return self.service_seconds + self.call_gap_seconds


def service_times(
    session: Session, categories: Sequence[Any], day: dt.date
) -> dict[int, ServiceTime]:
    """Each category's rolling service time today (one query for all of them).

    `categories` need an `id` and `typical_minutes` (rows or ServiceCategory objects).
    """
    if not categories:
        return {}
    newest = (
        func.row_number()
        .over(partition_by=Ticket.category_id, order_by=(Ticket.finished_at.desc(), Ticket.id))
        .label("newest")
    )
    recent = (
        select(
            Ticket.category_id,
            Ticket.service_seconds,
            Ticket.called_at,
            Ticket.finished_at,
            newest,
        )
        .where(
            Ticket.category_id.in_([c.id for c in categories]),
            Ticket.service_day == day,
            Ticket.status == TicketStatus.DONE,
            Ticket.service_seconds.is_not(None),
        )
        .subquery()
    )
    rows: Sequence[Any] = session.execute(
        select(
            recent.c.category_id,
            recent.c.service_seconds,
            recent.c.called_at,
            recent.c.finished_at,
        ).where(recent.c.newest <= ROLLING_MEAN_TICKETS)
    ).all()
    services: dict[int, list[float]] = {c.id: [] for c in categories}
    gaps: dict[int, list[float]] = {c.id: [] for c in categories}
    for category_id, seconds, called_at, finished_at in rows:
        services[category_id].append(float(seconds))
        if called_at is not None and finished_at is not None:
            gap = (finished_at - called_at).total_seconds() - float(seconds)
            if 0.0 <= gap <= MAX_CALL_GAP_SECONDS:
                gaps[category_id].append(gap)
    result = {}
    for category in categories:
        seen = services[category.id]
        prior = category.typical_minutes * 60.0
        mean = (sum(seen) + PRIOR_WEIGHT * prior) / (len(seen) + PRIOR_WEIGHT)
        gap = sum(gaps[category.id]) / len(gaps[category.id]) if gaps[category.id] else 0.0
        result[category.id] = ServiceTime(mean, gap, len(seen))
    return result


def mean_service_seconds(session: Session, category: ServiceCategory, day: dt.date) -> float:
    """Rolling mean service time of the category today, shrunk towards the typical minutes."""
    return service_times(session, [category], day)[category.id].service_seconds


def _busy_until(ticket: Any, time: ServiceTime | None, now: dt.datetime) -> dt.datetime:
    """When a window holding `ticket` (called or serving) is expected to be free again."""
    if ticket is None or time is None:
        return now
    if ticket.status == TicketStatus.SERVING:
        elapsed = served_so_far(ticket, now)
        left = max(time.service_seconds - elapsed, MIN_RESIDUAL_FRACTION * time.service_seconds)
    else:  # called: the citizen is walking to the window
        since_call = (now - (ticket.called_at or now)).total_seconds()
        left = max(0.0, time.call_gap_seconds - since_call) + time.service_seconds
    return now + dt.timedelta(seconds=left)


# -- the replay --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedTicket:
    id: int
    category_id: int
    priority: int
    due_at: dt.datetime | None
    queue_at: dt.datetime
    target_window_id: int | None

    def order(self, at: dt.datetime) -> tuple[int, dt.datetime, int]:
        """The call order key at `at`, as `call_next` orders (appointments jump once due)."""
        return (rank_at(self.priority, self.due_at, at), self.queue_at, self.id)


@dataclass(frozen=True)
class Replay:
    call_in: dict[int, float]  # ticket id -> seconds from the start until it is called
    tail_in: dict[int, float]  # category id -> seconds until a number taken now is called


def replay(
    windows: Sequence[tuple[int, frozenset[int], dt.datetime]],
    queue: Sequence[QueuedTicket],
    occupancy: dict[int, float],
    now: dt.datetime,
) -> Replay:
    """Replay `call_next` from `now` on the expected occupancy of each category.

    `windows` are the open windows as (id, categories served, moment it is next free); each
    free window claims the first ticket it may call, in call order at that moment, and is
    taken for that category's expected occupancy. Arrivals to come are unknown and ignored, so
    a window that finds nothing to call is idle from then on: the first window serving a
    category to go idle is when a number taken now would be called (every queued ticket was
    queued earlier, so comes first). Tickets and categories no open window serves are absent.
    """
    # Most tickets keep their place in the order: one sorted deque per category, whose head is
    # its candidate. Appointments (their rank changes when due) and tickets sent to one window
    # are few: scanned at each call. A replay is then linear in the queue, not quadratic.
    plain: dict[int, deque[QueuedTicket]] = {}
    special: list[QueuedTicket] = []
    for item in sorted(queue, key=lambda t: t.order(now)):
        if item.priority == TicketPriority.APPOINTMENT or item.target_window_id is not None:
            special.append(item)
        else:
            plain.setdefault(item.category_id, deque()).append(item)
    call_in: dict[int, float] = {}
    tail_in: dict[int, float] = {}
    heap = [(free_at, number, wid, cats) for number, (wid, cats, free_at) in enumerate(windows)]
    heapq.heapify(heap)
    while heap:
        free_at, number, wid, cats = heapq.heappop(heap)
        at = max(free_at, now)
        best: QueuedTicket | None = None
        for category_id in cats:
            line = plain.get(category_id)
            if line and (best is None or line[0].order(at) < best.order(at)):
                best = line[0]
        for item in special:
            callable_here = item.category_id in cats and item.target_window_id in (None, wid)
            if callable_here and (best is None or item.order(at) < best.order(at)):
                best = item
        if best is None:  # idle from now on, until new arrivals
            for category_id in cats:
                tail_in.setdefault(category_id, (at - now).total_seconds())
            continue
        call_in[best.id] = (at - now).total_seconds()
        if plain.get(best.category_id) and plain[best.category_id][0] is best:
            plain[best.category_id].popleft()
        else:
            special.remove(best)
        free = at + dt.timedelta(seconds=occupancy.get(best.category_id, 0.0))
        heapq.heappush(heap, (free, number, wid, cats))
    return Replay(call_in, tail_in)


# -- a hall's forecast -------------------------------------------------------------------------


@dataclass(frozen=True)
class HallForecast:
    """A hall's queue replayed from `at`."""

    hall_id: int
    day: dt.date
    at: dt.datetime
    times: dict[int, ServiceTime]  # category id -> its service time today
    open_windows: dict[int, int]  # category id -> open windows serving it
    call_in: dict[int, float]  # queued ticket id -> seconds from `at` until called
    tail_in: dict[int, float]  # category id -> seconds from `at` until a new number is called
    calls: dict[int, list[float]]  # category id -> its expected call times, ascending
    replayed: frozenset[int]  # the queued ticket ids the replay saw

    def wait_seconds(self, ticket: Ticket, ahead: int, now: dt.datetime) -> float | None:
        """Seconds from `now` until the queued `ticket`, with `ahead` people before it, is called.

        A ticket the replay saw has its own call time. One queued since (a new number, a late
        return, a transfer) takes the place its position gives among the category's calls, and
        beyond the last of them one more occupancy per open window for each person ahead.
        """
        elapsed = max(0.0, (now - self.at).total_seconds())
        own = self.call_in.get(ticket.id)
        if own is not None:
            return max(0.0, own - elapsed)
        if ticket.id in self.replayed:
            return None  # queued, but no open window may call it
        # Calls made since the forecast are not known here (they already left `ahead`): over
        # the few seconds a forecast is kept they are few, and the next forecast counts them.
        calls = self.calls.get(ticket.category_id, [])
        if ahead < len(calls):
            return max(0.0, calls[ahead] - elapsed)
        tail, windows = (
            self.tail_in.get(ticket.category_id),
            self.open_windows.get(ticket.category_id),
        )
        if tail is None or not windows:
            return None
        per_person = self.times[ticket.category_id].occupancy_seconds / windows
        return max(0.0, tail - elapsed) + (ahead - len(calls)) * per_person


def forecast_hall(session: Session, hall_id: int, day: dt.date, now: dt.datetime) -> HallForecast:
    """Replay the hall's queue of `day` from `now` (three reads)."""
    # The hall's categories (typical minutes) and the staffed windows serving each, in one
    # read: a window marked open with no clerk at it (left open overnight) calls nobody.
    categories: dict[int, Any] = {}
    served: dict[int, list[int]] = {}
    for row in session.execute(
        select(ServiceCategory.id, ServiceCategory.typical_minutes, Window.id.label("window_id"))
        .select_from(ServiceCategory)
        .outerjoin(WindowCategory, WindowCategory.category_id == ServiceCategory.id)
        .outerjoin(
            Window,
            and_(
                Window.id == WindowCategory.window_id,
                Window.hall_id == hall_id,
                Window.status == WindowStatus.OPEN,
                Window.clerk_id.is_not(None),
            ),
        )
        .where(ServiceCategory.hall_id == hall_id)
        .order_by(Window.id, ServiceCategory.prefix)
    ):
        categories.setdefault(row.id, row)
        if row.window_id is not None:
            served.setdefault(row.window_id, []).append(row.id)
    times = service_times(session, list(categories.values()), day)
    # Narrow columns: a busy hall has hundreds queued, and this runs every few seconds.
    at_counter: dict[int | None, Any] = {}
    queue: list[QueuedTicket] = []
    for ticket_row in session.execute(
        select(
            Ticket.id,
            Ticket.category_id,
            Ticket.priority,
            Ticket.due_at,
            Ticket.queue_at,
            Ticket.target_window_id,
            Ticket.status,
            Ticket.window_id,
            Ticket.serving_started_at,
            Ticket.service_seconds,
            Ticket.called_at,
        ).where(
            Ticket.hall_id == hall_id,
            Ticket.service_day == day,
            or_(Ticket.status.in_(AT_COUNTER), Ticket.status.in_(QUEUED_STATUSES)),
        )
    ):
        if ticket_row.status in AT_COUNTER:
            at_counter[ticket_row.window_id] = ticket_row
        else:
            queue.append(QueuedTicket(*ticket_row[:6]))
    windows = []
    for window_id, cats in served.items():
        held = at_counter.get(window_id)
        time = times.get(held.category_id) if held is not None else None
        windows.append((window_id, frozenset(cats), _busy_until(held, time, now)))
    occupancy = {cid: t.occupancy_seconds for cid, t in times.items()}
    result = replay(windows, queue, occupancy, now)
    calls: dict[int, list[float]] = {}
    for item in queue:
        if item.id in result.call_in:
            calls.setdefault(item.category_id, []).append(result.call_in[item.id])
    open_windows = {cid: sum(1 for cats in served.values() if cid in cats) for cid in categories}
    return HallForecast(
        hall_id=hall_id,
        day=day,
        at=now,
        times=times,
        open_windows=open_windows,
        call_in=result.call_in,
        tail_in=result.tail_in,
        calls={cid: sorted(seconds) for cid, seconds in calls.items()},
        replayed=frozenset(item.id for item in queue),
    )


class ForecastCache:
    """Each hall's latest forecast in this process, answered from for `max_age_seconds`.

    0 replays for every estimate. Forecasts are per process: with several workers each keeps
    its own, all at most `max_age_seconds` old (a little more while one is being replaced).
    """

    def __init__(self, max_age_seconds: float) -> None:
        self.max_age_seconds = max_age_seconds
        self._forecasts: dict[tuple[int, dt.date], HallForecast] = {}
        self._replaying: dict[tuple[int, dt.date], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _fresh(self, key: tuple[int, dt.date], now: dt.datetime) -> HallForecast | None:
        forecast = self._forecasts.get(key)
        if forecast is None:
            return None
        # A forecast a concurrent request made a moment "later" than this one's clock is as
        # good as one made a moment earlier; only its age either way counts.
        age = abs((now - forecast.at).total_seconds())
        return forecast if age <= self.max_age_seconds else None

    def _lock_for(self, key: tuple[int, dt.date]) -> threading.Lock:
        with self._locks_lock:
            return self._replaying.setdefault(key, threading.Lock())

    def get(self, session: Session, hall_id: int, day: dt.date, now: dt.datetime) -> HallForecast:
        if self.max_age_seconds <= 0:
            return forecast_hall(session, hall_id, day, now)
        key = (hall_id, day)
        forecast = self._fresh(key, now)
        if forecast is not None:
            return forecast
        # One replay of a hall at a time. While it runs, requests answer from the forecast it
        # replaces rather than queue behind it: a busy hall's replay takes tens of ms.
        lock = self._lock_for(key)
        if not lock.acquire(blocking=False):
            previous = self._forecasts.get(key)
            if previous is not None:
                return previous
            lock.acquire()
        try:
            forecast = self._fresh(key, now)
            if forecast is None:
                forecast = forecast_hall(session, hall_id, day, now)
                self._keep(key, forecast)
            return forecast
        finally:
            lock.release()

    def _keep(self, key: tuple[int, dt.date], forecast: HallForecast) -> None:
        with self._locks_lock:
            # Earlier days' forecasts are of no further use.
            for old in [k for k in self._forecasts if k[1] != key[1]]:
                del self._forecasts[old]
                self._replaying.pop(old, None)
            self._forecasts[key] = forecast


# -- the estimate shown to the citizen ---------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    ahead: int
    wait_seconds: int | None  # None when no window serving the category is open
    mean_service_seconds: float
    open_windows: float


def estimate_for(
    session: Session,
    ticket: Ticket,
    *,
    now: dt.datetime,
    forecasts: ForecastCache | None = None,
    ahead: int | None = None,
) -> Estimate:
    """Position and estimated wait of a ticket: the position counted now, the wait forecast.

    Without `forecasts` the hall's queue is replayed afresh; `ahead` is the position when the
    caller has just counted it.
    """
    if forecasts is None:
        forecast = forecast_hall(session, ticket.hall_id, ticket.service_day, now)
    else:
        forecast = forecasts.get(session, ticket.hall_id, ticket.service_day, now)
    time = forecast.times.get(ticket.category_id)
    mean = time.service_seconds if time is not None else 0.0
    windows = float(forecast.open_windows.get(ticket.category_id, 0))
    if ticket.status not in QUEUED_STATUSES:
        return Estimate(0, 0, mean, windows)
    if ahead is None:
        ahead = position_of(session, ticket, now=now)
    wait = forecast.wait_seconds(ticket, ahead, now)
    return Estimate(ahead, None if wait is None else math.ceil(wait), mean, windows)

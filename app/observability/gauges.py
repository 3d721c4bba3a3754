"""Gauges read from the database when Prometheus scrapes: outbox depth, tickets waiting per hall.

Computed at scrape time, not counted on the request path: a request that takes a ticket or
enqueues a message pays nothing for them, and the figures cannot drift from the tables. Each
is a count over an index: `ix_notification_outbox_status_due` (status, next_attempt_at) for
the outbox, and `ix_tickets_queue` (hall_id, service_day, status) per hall for the queues.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from app import calendar
from app.notify.models import NotificationOutbox, OutboxStatus
from app.observability.metrics import NAMESPACE
from app.organisation.models import Hall
from app.queueing.models import QUEUED_STATUSES, Ticket

log = logging.getLogger(__name__)


def outbox_depth(session: Session, *, now: dt.datetime) -> dict[str, int]:
    """Notification rows waiting (`pending`), due now (`due`), and leased to a worker."""
    by_status = dict(
        session.execute(
            select(NotificationOutbox.status, func.count())
            .where(NotificationOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
            .group_by(NotificationOutbox.status)
        ).all()
    )
    due = session.scalar(
        select(func.count()).where(
            NotificationOutbox.status == OutboxStatus.PENDING,
            NotificationOutbox.next_attempt_at <= now,
        )
    )
    return {
        "pending": int(by_status.get(OutboxStatus.PENDING, 0)),
        "due": int(due or 0),
        "sending": int(by_status.get(OutboxStatus.SENDING, 0)),
    }


def waiting_per_hall(session: Session, *, now: dt.datetime) -> dict[str, int]:
    """Tickets waiting to be called today, by hall code (0 for a hall with none).

    Not `queueing.board.waiting_by_hall`: its GROUP BY over the day's tickets cannot start
    from `ix_tickets_queue`, whose first column is the hall; one count per hall can, and a
    district has a few dozen halls.
    """
    day = calendar.local_day(now)
    waiting: ScalarSelect[int] = (
        select(func.count())
        .where(
            Ticket.hall_id == Hall.id,
            Ticket.service_day == day,
            Ticket.status.in_(QUEUED_STATUSES),
        )
        .scalar_subquery()
    )
    return {
        str(code): int(count) for code, count in session.execute(select(Hall.code, waiting)).all()
    }


class DatabaseGauges:
    """A collector for one scrape, reading through `session`."""

    def __init__(self, session: Session, *, now: dt.datetime) -> None:
        self._session = session
        self._now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{NAMESPACE}_metrics_database_up",
            "1 when this scrape could read the database gauges, 0 when it could not.",
        )
        try:
            depth = outbox_depth(self._session, now=self._now)
            queues = waiting_per_hall(self._session, now=self._now)
        except SQLAlchemyError:
            # The process metrics are still worth serving; the gap in these shows the outage.
            log.warning("metrics: the database gauges could not be read", exc_info=True)
            self._session.rollback()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        outbox = GaugeMetricFamily(
            f"{NAMESPACE}_outbox_rows",
            "Notification outbox rows: pending (all waiting), due (pending and due now), "
            "sending (leased to a worker).",
            labels=["state"],
        )
        for state, count in depth.items():
            outbox.add_metric([state], count)
        yield outbox
        waiting = GaugeMetricFamily(
            f"{NAMESPACE}_queue_waiting_tickets",
            "Tickets waiting to be called today, per hall (its code).",
            labels=["hall"],
        )
        for hall, count in sorted(queues.items()):
            waiting.add_metric([hall], count)
        yield waiting

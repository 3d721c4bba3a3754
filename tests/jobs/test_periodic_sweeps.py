"""The runner's periodic step also expires leftover tickets and marks missed appointments."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from flask import Flask

from app.appointments.models import Appointment, AppointmentSlot, AppointmentStatus
from app.audit.service import Actor
from app.db import get_session
from app.halls.models import OpeningHours, ServiceCategory
from app.identity.models import User
from app.integrations.wechat import get_wechat
from app.jobs.dramatiq_broker import DramatiqRunner
from app.jobs.inprocess import InProcessRunner
from app.jobs.settings import JobSettings
from app.jobs.sweeps import PeriodicSweeps
from app.organisation.models import Hall, HallKind
from app.queueing.models import Ticket, TicketSource, TicketStatus
from app.queueing.settings import from_config
from app.queueing.taking import issue_ticket
from tests.factories.appointments import local
from tests.factories.notify import unique_openid
from tests.support.jobs import build_app

DAY = (2026, 11, 27)  # a Friday


def _commit_day(app: Flask) -> tuple[int, int]:
    """A hall open 09:00-17:00 with a ticket taken at 10:00 and an appointment booked for 09:00
    that nobody checked in; returns (ticket id, appointment id)."""
    with app.app_context():
        session = get_session()
        hall = Hall(code="SWEEP01", name="清扫测试中心", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        for weekday in range(7):
            session.add(
                OpeningHours(
                    hall_id=hall.id, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(17)
                )
            )
        category = ServiceCategory(hall_id=hall.id, name="综合业务", prefix="A", daily_cap=100)
        user = User(openid=unique_openid("o_sweep"))
        session.add_all([category, user])
        session.flush()
        ticket = issue_ticket(
            session,
            category=category,
            user_id=user.id,
            source=TicketSource.HALL_CODE,
            actor=Actor("user", user.id),
            now=local(*DAY, 10, 0),
            settings=from_config(app.config),
        ).ticket
        slot = AppointmentSlot(
            hall_id=hall.id,
            category_id=category.id,
            day=dt.date(*DAY),
            starts_at=local(*DAY, 9, 0),
            ends_at=local(*DAY, 9, 30),
            capacity=4,
            booked=1,
        )
        session.add(slot)
        session.flush()
        appointment = Appointment(
            slot_id=slot.id,
            user_id=user.id,
            hall_id=hall.id,
            category_id=category.id,
            day=slot.day,
            starts_at=slot.starts_at,
            status=AppointmentStatus.BOOKED,
            booked_at=local(*DAY, 8, 0),
        )
        session.add(appointment)
        session.commit()
        return ticket.id, appointment.id


def _statuses(app: Flask, ticket_id: int, appointment_id: int) -> tuple[str, str]:
    with app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        appointment = session.get(Appointment, appointment_id)
        assert ticket is not None and appointment is not None
        return str(ticket.status), str(appointment.status)


def test_the_periodic_step_expires_leftovers_after_closing_and_marks_missed(
    app: Flask, tmp_path: Path
) -> None:
    application = build_app(app, tmp_path, JOB_RUNNER="manual")
    ticket_id, appointment_id = _commit_day(application)
    clock = [local(*DAY, 16, 59) + dt.timedelta(seconds=30)]
    factory = application.extensions["db"].sessionmaker
    sweeps = PeriodicSweeps(
        factory, config=application.config, interval_seconds=60, now_fn=lambda: clock[0]
    )
    runner = InProcessRunner(
        session_factory=factory,
        wechat=lambda: get_wechat(application),
        settings=JobSettings.from_config(application.config),
        now_fn=lambda: clock[0],
        sweeps=sweeps,
    )

    # 16:59:30: the hall is open, the ticket waits; the 09:00 appointment's check-in closed at
    # 09:15.
    runner.run_once()
    assert _statuses(application, ticket_id, appointment_id) == ("waiting", "missed")

    # 17:00:10, closed, but the last sweep ran less than a minute ago: nothing yet.
    clock[0] = local(*DAY, 17, 0) + dt.timedelta(seconds=10)
    runner.run_once()
    assert _statuses(application, ticket_id, appointment_id)[0] == "waiting"

    clock[0] = local(*DAY, 17, 0) + dt.timedelta(seconds=40)
    runner.run_once()
    assert _statuses(application, ticket_id, appointment_id) == ("expired", "missed")
    with application.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        assert ticket is not None and ticket.finished_at == clock[0]

    # Idempotent: running again finds nothing to do.
    again = sweeps.run(local(*DAY, 17, 5))
    assert (again.tickets_expired, again.appointments_missed) == (0, 0)


def test_leftovers_of_an_earlier_day_expire_even_before_today_closes(
    app: Flask, tmp_path: Path
) -> None:
    application = build_app(app, tmp_path, JOB_RUNNER="manual")
    ticket_id, _ = _commit_day(application)
    factory = application.extensions["db"].sessionmaker
    sweeps = PeriodicSweeps(
        factory, config=application.config, interval_seconds=60, now_fn=lambda: local(*DAY)
    )
    next_morning = local(2026, 11, 28, 9, 30)
    result = sweeps.run(next_morning)
    assert result.tickets_expired == 1
    with application.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == TicketStatus.EXPIRED


def test_the_dramatiq_sweep_runs_the_domain_sweeps_too(app: Flask, tmp_path: Path) -> None:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    application = build_app(
        app,
        tmp_path,
        JOB_RUNNER="dramatiq",
        REDIS_URL=url,
        DRAMATIQ_NAMESPACE=f"test-sweeps-{uuid.uuid4().hex[:12]}",
    )
    ticket_id, appointment_id = _commit_day(application)
    runner = application.extensions["jobs"]
    assert isinstance(runner, DramatiqRunner)
    after_closing = local(*DAY, 17, 30)
    runner._sweeps = PeriodicSweeps(
        application.extensions["db"].sessionmaker,
        config=application.config,
        interval_seconds=60,
        now_fn=lambda: after_closing,
    )
    runner._sweep_outbox()  # what the `sweep_outbox` actor runs
    assert _statuses(application, ticket_id, appointment_id) == ("expired", "missed")

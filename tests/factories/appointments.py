"""Factories for appointments, ratings and statistics: a hall with hours, categories and
windows; slots; appointments; tickets written directly in any state."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from app.appointments.models import Appointment, AppointmentSlot, AppointmentStatus
from app.appointments.rules import AppointmentRules
from app.halls.models import HallProfile, OpeningHours, ServiceCategory, Window, WindowCategory
from app.identity.models import User
from app.organisation.models import Hall, HallKind
from app.queueing.models import Ticket, TicketSource, TicketStatus

LOCAL = ZoneInfo("Asia/Shanghai")
RULES = AppointmentRules()

_serial = itertools.count(1)
_numbers: dict[tuple[int, dt.date], int] = {}


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """An aware UTC moment from Asia/Shanghai wall-clock time."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LOCAL).astimezone(dt.UTC)


@dataclass
class HallSetup:
    hall: Hall
    categories: list[ServiceCategory] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.hall.id


@pytest.fixture
def appointment_hall(session: Session) -> Callable[..., HallSetup]:
    """A hall open Mon-Fri 09:00-12:00 and 13:30-17:00, with categories A (综合业务) and
    B (不动产登记) and windows 1 (A, B) and 2 (B)."""

    def create(**fields: Any) -> HallSetup:
        n = next(_serial)
        fields.setdefault("code", f"APPT{n:04d}")
        fields.setdefault("name", f"预约测试便民服务中心{n}")
        fields.setdefault("kind", HallKind.TOWN)
        hall = Hall(**fields)
        session.add(hall)
        session.flush()
        session.add(
            HallProfile(
                hall_id=hall.id, address="番禺区测试路1号", latitude=22.94, longitude=113.38
            )
        )
        for weekday in range(5):
            session.add(
                OpeningHours(
                    hall_id=hall.id, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(12)
                )
            )
            session.add(
                OpeningHours(
                    hall_id=hall.id,
                    weekday=weekday,
                    opens_at=dt.time(13, 30),
                    closes_at=dt.time(17),
                )
            )
        a = ServiceCategory(
            hall_id=hall.id, name="综合业务", prefix="A", daily_cap=300, typical_minutes=10.0
        )
        b = ServiceCategory(
            hall_id=hall.id, name="不动产登记", prefix="B", daily_cap=200, typical_minutes=20.0
        )
        session.add_all([a, b])
        session.flush()
        w1 = Window(hall_id=hall.id, number=1)
        w2 = Window(hall_id=hall.id, number=2)
        session.add_all([w1, w2])
        session.flush()
        session.add_all(
            [
                WindowCategory(window_id=w1.id, category_id=a.id),
                WindowCategory(window_id=w1.id, category_id=b.id),
                WindowCategory(window_id=w2.id, category_id=b.id),
            ]
        )
        session.flush()
        return HallSetup(hall, [a, b], [w1, w2])

    return create


@pytest.fixture
def create_slot(session: Session) -> Callable[..., AppointmentSlot]:
    """A slot of `category` starting at `starts_at` (30 min, capacity 4 unless given)."""

    def create(category: ServiceCategory, starts_at: dt.datetime, **fields: Any) -> AppointmentSlot:
        fields.setdefault("capacity", 4)
        fields.setdefault("booked", 0)
        fields.setdefault("ends_at", starts_at + dt.timedelta(minutes=30))
        slot = AppointmentSlot(
            hall_id=category.hall_id,
            category_id=category.id,
            day=starts_at.astimezone(LOCAL).date(),
            starts_at=starts_at,
            **fields,
        )
        session.add(slot)
        session.flush()
        return slot

    return create


@pytest.fixture
def create_appointment(session: Session) -> Callable[..., Appointment]:
    """An appointment of `user` on `slot` written directly (the slot's counter follows)."""

    def create(user: User, slot: AppointmentSlot, **fields: Any) -> Appointment:
        fields.setdefault("status", AppointmentStatus.BOOKED)
        fields.setdefault("booked_at", slot.starts_at - dt.timedelta(days=1))
        appointment = Appointment(
            slot_id=slot.id,
            user_id=user.id,
            hall_id=slot.hall_id,
            category_id=slot.category_id,
            day=slot.day,
            starts_at=slot.starts_at,
            **fields,
        )
        if appointment.status != AppointmentStatus.CANCELLED:
            slot.booked += 1
        session.add(appointment)
        session.flush()
        return appointment

    return create


def ticket_values(
    category: ServiceCategory,
    taken_at: dt.datetime,
    *,
    status: TicketStatus = TicketStatus.WAITING,
    user: User | None = None,
    window: Window | None = None,
    wait_seconds: float | None = None,
    service_seconds: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The column values of a ticket taken at `taken_at` that went as far as `status`; called
    `wait_seconds` later and served `service_seconds` when given."""
    day = taken_at.astimezone(LOCAL).date()
    key = (category.id, day)
    _numbers[key] = number = _numbers.get(key, 0) + 1
    values: dict[str, Any] = {
        "hall_id": category.hall_id,
        "category_id": category.id,
        "issued_category_id": category.id,
        "service_day": day,
        "number": number,
        "display": f"{category.prefix}{number:03d}",
        "user_id": user.id if user else None,
        "status": status,
        "source": TicketSource.HALL_CODE,
        "priority": 0,
        "taken_at": taken_at,
        "queue_at": taken_at,
        "window_id": window.id if window else None,
        "recall_count": 0,
        "late_return_used": False,
        "notified_near": False,
        "version": 1,
    }
    if wait_seconds is not None:
        values["called_at"] = taken_at + dt.timedelta(seconds=wait_seconds)
        if service_seconds is not None:
            values["serving_started_at"] = values["called_at"] + dt.timedelta(seconds=30)
            if status == TicketStatus.DONE:
                values["finished_at"] = values["serving_started_at"] + dt.timedelta(
                    seconds=service_seconds
                )
                values["service_seconds"] = service_seconds
    values.update(fields)
    return values


@pytest.fixture
def create_ticket_row(session: Session) -> Callable[..., Ticket]:
    """A ticket inserted directly in any state (see `ticket_values`)."""

    def create(category: ServiceCategory, taken_at: dt.datetime, **kwargs: Any) -> Ticket:
        ticket = Ticket(**ticket_values(category, taken_at, **kwargs))
        session.add(ticket)
        session.flush()
        return ticket

    return create

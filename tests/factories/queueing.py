"""Factories for halls set up for queueing, and taking numbers directly through the service."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.db import utcnow
from app.halls import service as halls
from app.halls.models import ServiceCategory, Window, WindowStatus
from app.identity.models import User
from app.organisation.models import Hall
from app.queueing import service as queue
from app.queueing.models import Ticket, TicketSource
from app.queueing.settings import QueueSettings, from_config

HALL_LAT, HALL_LNG = 22.9373, 113.3842  # 区政务服务中心, 市桥
ALL_DAY = (dt.time(0, 0), dt.time(23, 59, 59))
_serial = itertools.count(1)


@dataclass
class QueueHall:
    hall: Hall
    categories: dict[str, ServiceCategory] = field(default_factory=dict)
    windows: dict[int, Window] = field(default_factory=dict)


@pytest.fixture
def queue_settings(app: Flask) -> QueueSettings:
    return from_config(app.config)


def setup_queue_hall(
    session: Session,
    hall: Hall,
    *,
    categories: Sequence[tuple[str, str]] = (("综合业务", "A"), ("社保医保", "B")),
    windows: Sequence[tuple[int, str]] = ((1, "AB"), (2, "A"), (3, "B")),
    hours: Sequence[tuple[int, dt.time, dt.time]] | None = None,
    open_windows: bool = True,
    daily_cap: int = 500,
    typical_minutes: float = 10.0,
    clerk_id: int | None = None,
) -> QueueHall:
    """Give a hall a profile, hours (every day, all day, holidays included by default),
    categories and windows."""
    halls.update_profile(
        session,
        hall.id,
        {
            "address": "番禺区市桥街",
            "latitude": HALL_LAT,
            "longitude": HALL_LNG,
            "open_on_public_holidays": hours is None,
        },
    )
    halls.replace_weekly_hours(session, hall.id, hours or [(d, *ALL_DAY) for d in range(7)])
    result = QueueHall(hall)
    for name, prefix in categories:
        result.categories[prefix] = halls.create_category(
            session,
            hall.id,
            {
                "name": name,
                "prefix": prefix,
                "daily_cap": daily_cap,
                "typical_minutes": typical_minutes,
            },
        )
    for number, prefixes in windows:
        window = halls.create_window(
            session,
            hall.id,
            number=number,
            label=None,
            category_ids=[result.categories[p].id for p in prefixes],
        )
        if open_windows:
            window.status = WindowStatus.OPEN
            window.clerk_id = clerk_id
        result.windows[number] = window
    session.flush()
    return result


@pytest.fixture
def create_queue_hall(
    session: Session, create_hall: Callable[..., Hall]
) -> Callable[..., QueueHall]:
    """A hall ready for queueing:
    `create_queue_hall(categories=[("综合业务", "A")], windows=[(1, "A")])`."""

    def create(**options: Any) -> QueueHall:
        hall_fields = options.pop("hall_fields", {})
        return setup_queue_hall(session, create_hall(**hall_fields), **options)

    return create


@pytest.fixture
def take_ticket(session: Session, queue_settings: QueueSettings) -> Callable[..., Ticket]:
    """Take a number through the service: `take_ticket(user, category, now=...)`."""

    def take(
        user: User | None, category: ServiceCategory, *, now: dt.datetime | None = None, **kw: Any
    ) -> Ticket:
        return queue.issue_ticket(
            session,
            category=category,
            user_id=user.id if user is not None else None,
            source=kw.pop("source", TicketSource.HALL_CODE),
            actor=Actor("user", user.id if user else None),
            now=now or utcnow(),
            settings=queue_settings,
            **kw,
        ).ticket

    return take

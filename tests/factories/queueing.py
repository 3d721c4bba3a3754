"""Factories for halls set up for queueing, and taking numbers directly through the service."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.db import utcnow
from app.halls.models import ServiceCategory
from app.identity.models import User
from app.organisation.models import Hall
from app.queueing import service as queue
from app.queueing.demo import QueueHall, setup_queue_hall
from app.queueing.models import Ticket, TicketSource
from app.queueing.settings import QueueSettings, from_config

_serial = itertools.count(1)


@pytest.fixture
def queue_settings(app: Flask) -> QueueSettings:
    return from_config(app.config)


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

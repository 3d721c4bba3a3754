"""Factories for halls set up for queueing, and taking numbers directly through the service."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, current_app
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.db import utcnow
from app.halls.models import ServiceCategory, Window
from app.identity.models import StaffAccount, StaffRole, User
from app.organisation.models import Hall
from app.queueing.demo import QueueHall, setup_queue_hall
from app.queueing.models import Ticket, TicketSource
from app.queueing.settings import QueueSettings, from_config
from app.queueing.taking import issue_ticket
from app.queueing.windows import WindowAction, act

_serial = itertools.count(1)


@pytest.fixture
def queue_settings(app: Flask) -> QueueSettings:
    return from_config(app.config)


@pytest.fixture
def create_queue_hall(
    session: Session, create_hall: Callable[..., Hall], create_staff: Callable[..., StaffAccount]
) -> Callable[..., QueueHall]:
    """A hall ready for queueing, its windows open with a clerk at them:
    `create_queue_hall(categories=[("综合业务", "A")], windows=[(1, "A")])`."""

    def create(**options: Any) -> QueueHall:
        hall = create_hall(**options.pop("hall_fields", {}))
        if "clerk_id" not in options:
            clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, hall.id, None)])
            options["clerk_id"] = clerk.id
        return setup_queue_hall(session, hall, **options)

    return create


@pytest.fixture
def take_ticket(session: Session, queue_settings: QueueSettings) -> Callable[..., Ticket]:
    """Take a number through the service: `take_ticket(user, category, now=...)`."""

    def take(
        user: User | None, category: ServiceCategory, *, now: dt.datetime | None = None, **kw: Any
    ) -> Ticket:
        return issue_ticket(
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


def window_action(
    name: str,
    session: Session,
    window: Window,
    ticket_id: int,
    *,
    actor: Actor,
    now: dt.datetime,
    settings: QueueSettings | None = None,
    **fields: Any,
) -> Ticket:
    """One clerk action at a window through the service: `window_action("serve", session, ...)`."""
    return act(
        session,
        window,
        ticket_id,
        WindowAction(name, **fields),  # type: ignore[arg-type]  # tests name actions as text
        actor=actor,
        now=now,
        settings=settings or from_config(current_app.config),
    )

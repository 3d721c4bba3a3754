"""What the citizen, terminal and screen views of the queue share: a ticket as the API shows it."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import Forbidden
from app.halls.errors import WindowNotInHall
from app.halls.models import ServiceCategory, Window
from app.organisation.models import Hall
from app.queueing import runtime
from app.queueing.board import window_name
from app.queueing.forecast import estimate_for
from app.queueing.models import Ticket
from blueprints.authz import current_principal, require_scope

HALL_STAFF = ("window_clerk", "hall_manager")


def require_hall_staff(hall_id: int, *also: str) -> None:
    """The caller must be a clerk or manager of this hall (or hold one of `also` for it)."""
    try:
        require_scope((*HALL_STAFF, *also), hall_id)
    except Forbidden as error:
        raise WindowNotInHall(hall_id=hall_id) from error


def take_rate() -> str:
    """The rate limit on taking numbers, read per request so tests and operators may change it."""
    return str(current_app.config["RATELIMIT_TAKE_TICKET"])


def current_actor() -> Actor:
    principal = current_principal()
    return Actor("user" if principal.is_user else "staff", principal.id)


def ticket_out(
    ticket: Ticket,
    *,
    estimate: bool = True,
    ahead: int | None = None,
    names: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A ticket for the API, with live position and estimated wait while it waits.

    `ahead`: the position when the caller has just counted it (a number just issued);
    `names`: the hall's and the category's, when the caller has just read them.
    """
    session = get_session()
    if names is None:
        hall = session.get(Hall, ticket.hall_id)
        category = session.get(ServiceCategory, ticket.category_id)
        hall_name = hall.name if hall else None
        category_name = category.name if category else None
    else:
        hall_name, category_name = names
    body: dict[str, Any] = {
        "id": ticket.id,
        "display": ticket.display,
        "hall_id": ticket.hall_id,
        "hall_name": hall_name,
        "category_id": ticket.category_id,
        "category_name": category_name,
        "service_day": ticket.service_day,
        "status": ticket.status,
        "source": ticket.source,
        "priority": ticket.priority,
        "green_reason": ticket.green_reason,
        "taken_at": ticket.taken_at,
        "called_at": ticket.called_at,
        "window_number": None,
        "window_name": None,
        "recall_count": ticket.recall_count,
        "version": ticket.version,
        "ahead": None,
        "estimated_wait_minutes": None,
    }
    if ticket.window_id is not None:
        window = session.get(Window, ticket.window_id)
        if window is not None:
            body["window_number"], body["window_name"] = window.number, window_name(window)
    if estimate and ticket.status.is_active:
        result = estimate_for(
            session, ticket, now=utcnow(), forecasts=runtime().forecasts, ahead=ahead
        )
        body["ahead"] = result.ahead
        if result.wait_seconds is not None:
            body["estimated_wait_minutes"] = (result.wait_seconds + 59) // 60
    return body

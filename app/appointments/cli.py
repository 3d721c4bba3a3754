"""`flask appointments ...`: open slots ahead and sweep missed appointments (cron or timer)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.appointments import service
from app.appointments.rules import AppointmentRules
from app.db import get_session, utcnow
from app.halls.models import ServiceCategory

appointments_cli = AppGroup("appointments", help="Appointment slots and missed appointments.")


@appointments_cli.command("open-slots")
def open_slots() -> None:
    """Create the missing slots of every hall for its next working days."""
    session = get_session()
    rules = AppointmentRules.from_config(current_app.config)
    now = utcnow()
    created = 0
    for hall_id in session.scalars(select(ServiceCategory.hall_id).distinct()).all():
        created += service.open_slots(session, hall_id, rules=rules, now=now)
    session.commit()
    click.echo(f"opened {created} appointment slots")


@appointments_cli.command("sweep")
def sweep() -> None:
    """Mark missed appointments (and suspend repeat no-shows), then open slots ahead."""
    session = get_session()
    rules = AppointmentRules.from_config(current_app.config)
    missed = service.mark_missed(session, rules=rules, now=utcnow())
    session.commit()
    click.echo(f"marked {missed} appointments missed")
    open_slots.callback()  # type: ignore[misc]

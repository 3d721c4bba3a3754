"""An application's two limits, in working days from submission: the statutory one (法定时限)
and the department's promise (承诺时限). The clock stops while the application waits for the
applicant's 补正 and resumes on resubmission; a periodic job marks the overdue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.applications.models import OPEN_FOR_REVIEW, Application, ApplicationEvent
from app.calendar import deadline
from app.db import affected_rows
from app.matters import catalogue


def pauses(
    session: Session,
    application: Application,
    events: Sequence[ApplicationEvent] | None = None,
) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """Each wait for 补正: from the request to the resubmission (open while it lasts). From
    `events` when the caller holds all of the application's, in order; else read."""
    if events is None:
        events = session.scalars(
            select(ApplicationEvent)
            .where(
                ApplicationEvent.application_id == application.id,
                ApplicationEvent.action.in_(("request_supplement", "resubmit")),
            )
            .order_by(ApplicationEvent.id)
        ).all()
    out: list[tuple[dt.datetime, dt.datetime | None]] = []
    for event in events:
        if event.action == "request_supplement":
            out.append((event.at, None))
        elif event.action == "resubmit" and out and out[-1][1] is None:
            out[-1] = (out[-1][0], event.at)
    return out


def refresh(
    session: Session,
    application: Application,
    events: Sequence[ApplicationEvent] | None = None,
) -> None:
    """Recompute both due times from the submission, the matter version's limits and pauses
    (`events`: all of the application's, in order, when the caller holds them)."""
    if application.submitted_at is None or application.decided_at is not None:
        return
    limits = catalogue.get_version(
        session, application.matter_code, application.matter_version
    ).content["limits"]
    waits = pauses(session, application, events)
    application.statutory_due = deadline(application.submitted_at, limits["statutory_days"], waits)
    application.promised_due = deadline(
        application.submitted_at, max(limits["promised_days"], 0), waits
    )


def mark_overdue(session: Session, *, now: dt.datetime) -> int:
    """Mark every open application whose statutory limit has run out; returns how many."""
    result = session.execute(
        update(Application)
        .where(
            Application.status.in_([s.value for s in OPEN_FOR_REVIEW]),
            Application.overdue.is_(False),
            Application.statutory_due.is_not(None),
            Application.statutory_due < now,
        )
        .values(overdue=True)
    )
    return affected_rows(result)

"""容缺受理: an application accepted with non-key materials missing, on the applicant's promise
to supply them within the matter's working days.

While the promise runs, the applicant may upload the missing materials (the case stays with its
reviewer, who cannot approve it until they are in); a day before it runs out they are reminded;
when it has run out with a material still missing, the case ends by itself (终止办理), recorded
as the system's transition with the reason, and the applicant is told.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.applications import notices, workflow
from app.applications.models import OPEN_FOR_REVIEW, Application, ApplicationStatus
from app.calendar import deadline
from app.identity.models import User
from app.materials import service as materials
from app.matters import catalogue
from app.matters.models import Matter

log = logging.getLogger(__name__)

TOLERANCE_DEFAULT_DAYS = 5
REMIND_BEFORE = dt.timedelta(days=1)
# The states in which the missing materials may still come (a reviewer's 补正 included).
SUPPLYING = frozenset(s.value for s in OPEN_FOR_REVIEW)


def supply_due(content: Mapping[str, Any], accepted_at: dt.datetime) -> dt.datetime:
    """The end of the promise: the matter's working days from acceptance."""
    days = content.get("tolerance", {}).get("supply_days", TOLERANCE_DEFAULT_DAYS)
    due = deadline(accepted_at, days)
    assert due is not None  # no pauses given
    return due


def pending(application: Application) -> bool:
    """Whether materials accepted as missing are still to come."""
    return application.supply_due is not None


def after_upload(
    session: Session, application: Application, *, user: User, now: dt.datetime
) -> bool:
    """Record the promise kept once the last missing material is in (True then).

    The caller holds the application's row (`service.lock`) since before the material was let
    in: two uploads at once, or one crossing `lapse`, would otherwise each decide on what they
    read (two 'supply' transitions, or a supply recorded on a case the sweep just ended)."""
    if not pending(application) or application.status not in SUPPLYING:
        return False
    content = catalogue.get_version(
        session, application.matter_code, application.matter_version
    ).content
    lacking = materials.missing(session, application, content)
    if lacking.key or lacking.other:
        return False
    if application.status != ApplicationStatus.SUPPLEMENT_REQUESTED:
        # Imported here: the service imports this module to set the promise.
        from app.applications.service import move

        move(session, application, "supply", by="applicant", actor_id=user.id, now=now)
    application.supply_due = None
    session.flush()
    return True


def remind(session: Session, *, now: dt.datetime) -> int:
    """Remind every applicant whose promise runs out within a day, once; returns how many."""
    due_soon = session.scalars(
        select(Application)
        .where(
            Application.supply_due.is_not(None),
            Application.supply_due <= now + REMIND_BEFORE,
            Application.supply_due >= now,
            Application.supply_reminded_at.is_(None),
            Application.status.in_(SUPPLYING),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for application in due_soon:
        matter = session.get(Matter, application.matter_id)
        assert matter is not None and application.supply_due is not None
        notices.remind_supply(session, application, matter, due=application.supply_due, now=now)
        application.supply_reminded_at = now
    session.flush()
    return len(due_soon)


def lapse(session: Session, *, now: dt.datetime) -> int:
    """End every case whose promise has run out with a material still missing; returns how
    many ended."""
    from app.applications.service import move

    overdue = session.scalars(
        select(Application)
        .where(
            Application.supply_due.is_not(None),
            Application.supply_due < now,
            Application.status.in_(SUPPLYING),
        )
        .with_for_update(skip_locked=True)
    ).all()
    ended = 0
    for application in overdue:
        content = catalogue.get_version(
            session, application.matter_code, application.matter_version
        ).content
        lacking = materials.missing(session, application, content)
        names = "、".join(m["name"] for m in [*lacking.key, *lacking.other])
        if not names:  # supplied, the promise merely not cleared
            application.supply_due = None
            continue
        try:
            move(
                session,
                application,
                "lapse",
                by="system",
                actor_id=None,
                now=now,
                reason=f"容缺材料逾期未补交：{names}"[:500],
            )
        except workflow.IllegalTransition:
            # Filed under a workflow without 终止办理: its reviewer decides, as before.
            log.warning("tolerance lapsed, workflow cannot end it", extra={"id": application.id})
            application.supply_due = None
            continue
        application.supply_due = None
        matter = session.get(Matter, application.matter_id)
        assert matter is not None
        notices.notify(session, application, matter, now=now)
        ended += 1
    session.flush()
    return ended

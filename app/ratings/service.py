"""Rating a finished ticket or a decided application (好差评), and following up the bad ratings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.applications.models import Application, ApplicationStatus
from app.audit.service import Actor
from app.audit.service import record as audit
from app.calendar import add_working_days
from app.db import affected_rows
from app.queueing.models import Ticket, TicketStatus
from app.ratings import errors
from app.ratings.models import FollowUpStatus, Rating, RatingFollowUp, RatingLevel


@dataclass(frozen=True)
class RatingRules:
    window_days: int = 7
    comment_max_length: int = 500
    followup_working_days: int = 3

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RatingRules:
        return cls(
            window_days=config["RATING_WINDOW_DAYS"],
            comment_max_length=config["RATING_COMMENT_MAX_LENGTH"],
            followup_working_days=config["RATING_FOLLOWUP_WORKING_DAYS"],
        )


def _citizen_ticket(session: Session, ticket_id: int, user_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.user_id != user_id:
        raise errors.TicketNotFound()
    return ticket


def rating_of(session: Session, ticket_id: int) -> Rating | None:
    return session.scalars(select(Rating).where(Rating.ticket_id == ticket_id)).first()


def get_for_citizen(session: Session, ticket_id: int, user_id: int) -> Rating:
    """The citizen's rating of their ticket; TicketNotFound, or NotRatedYet before rating."""
    _citizen_ticket(session, ticket_id, user_id)
    rating = rating_of(session, ticket_id)
    if rating is None:
        raise errors.NotRatedYet()
    return rating


def rate(
    session: Session,
    *,
    user_id: int,
    ticket_id: int,
    level: RatingLevel,
    comment: str | None,
    rules: RatingRules,
    now: dt.datetime,
) -> Rating:
    """Rate a ticket of the citizen's that was finished within the rating window, once.

    不满意 or worse opens a follow-up for the hall's manager, due in working days.
    """
    ticket = _citizen_ticket(session, ticket_id, user_id)
    if ticket.status != TicketStatus.DONE or ticket.finished_at is None:
        raise errors.TicketNotRatable(status=ticket.status.value)
    _check_window(ticket.finished_at, comment, rules, now)
    existing = rating_of(session, ticket.id)
    if existing is not None:
        raise errors.AlreadyRated(rating_id=existing.id)
    rating = Rating(
        ticket_id=ticket.id,
        user_id=user_id,
        hall_id=ticket.hall_id,
        category_id=ticket.category_id,
        window_id=ticket.window_id,
        level=level,
        score=level.score,
        comment=comment or None,
        rated_at=now,
    )
    return _record(session, rating, rules, now, subject=("ticket", ticket.id))


# Decided applications the applicant may rate: 办结 either way, or ended for them (容缺 lapsed).
RATABLE_APPLICATIONS = frozenset(
    {ApplicationStatus.APPROVED, ApplicationStatus.REJECTED, ApplicationStatus.TERMINATED}
)


def application_rating_of(session: Session, application_id: int) -> Rating | None:
    return session.scalars(select(Rating).where(Rating.application_id == application_id)).first()


def rate_application(
    session: Session,
    application: Application,
    *,
    user_id: int,
    level: RatingLevel,
    comment: str | None,
    rules: RatingRules,
    now: dt.datetime,
) -> Rating:
    """Rate a decided application (the caller has checked it is the applicant's), once,
    within the rating window after the decision. 不满意 or worse opens a follow-up for the
    department that decided it."""
    if application.status not in RATABLE_APPLICATIONS or application.decided_at is None:
        raise errors.ApplicationNotRatable(status=application.status)
    _check_window(application.decided_at, comment, rules, now)
    existing = application_rating_of(session, application.id)
    if existing is not None:
        raise errors.AlreadyRated(rating_id=existing.id)
    rating = Rating(
        application_id=application.id,
        user_id=user_id,
        department_id=application.department_id,
        level=level,
        score=level.score,
        comment=comment or None,
        rated_at=now,
    )
    return _record(session, rating, rules, now, subject=("application", application.id))


def _check_window(
    finished_at: dt.datetime, comment: str | None, rules: RatingRules, now: dt.datetime
) -> None:
    if now > finished_at + dt.timedelta(days=rules.window_days):
        raise errors.RatingPeriodOver()
    if comment is not None and len(comment) > rules.comment_max_length:
        raise errors.CommentTooLong(max_length=rules.comment_max_length)


def _record(
    session: Session,
    rating: Rating,
    rules: RatingRules,
    now: dt.datetime,
    *,
    subject: tuple[str, int],
) -> Rating:
    """Store the rating (a concurrent one of the same subject loses on the unique key), open
    the follow-up of a bad one, and audit it."""
    try:
        with session.begin_nested():
            session.add(rating)
    except IntegrityError:
        kind, subject_id = subject
        existing = (
            rating_of(session, subject_id)
            if kind == "ticket"
            else application_rating_of(session, subject_id)
        )
        raise errors.AlreadyRated(rating_id=existing.id if existing else None) from None
    if rating.level.is_bad:
        session.add(
            RatingFollowUp(
                rating_id=rating.id,
                hall_id=rating.hall_id,
                department_id=rating.department_id,
                status=FollowUpStatus.OPEN,
                due_at=add_working_days(now, rules.followup_working_days),
            )
        )
        session.flush()
    # The comment is the citizen's free text: never in the audit log nor any log line.
    audit(
        session,
        "rating.created",
        actor=Actor("user", rating.user_id),
        now=now,
        subject_type=subject[0],
        subject_id=subject[1],
        details={"level": rating.level.value, "follow_up": rating.level.is_bad},
    )
    return rating


# --- follow-ups (hall managers, department reviewers) ------------------------------------------


def list_follow_ups(
    session: Session,
    *,
    hall_id: int | None = None,
    department_id: int | None = None,
    status: FollowUpStatus | None,
    overdue_only: bool,
    now: dt.datetime,
) -> list[RatingFollowUp]:
    """The hall's (or the department's) follow-ups, most urgent first."""
    query = select(RatingFollowUp).where(
        RatingFollowUp.hall_id == hall_id
        if hall_id is not None
        else RatingFollowUp.department_id == department_id
    )
    if status is not None:
        query = query.where(RatingFollowUp.status == status)
    if overdue_only:
        query = query.where(
            RatingFollowUp.status == FollowUpStatus.OPEN, RatingFollowUp.due_at < now
        )
    return list(
        session.scalars(query.order_by(RatingFollowUp.due_at, RatingFollowUp.id).limit(500))
    )


def get_follow_up(session: Session, follow_up_id: int) -> RatingFollowUp:
    follow_up = session.get(RatingFollowUp, follow_up_id)
    if follow_up is None:
        raise errors.FollowUpNotFound()
    return follow_up


def close_follow_up(
    session: Session,
    follow_up: RatingFollowUp,
    *,
    rectification: str,
    staff_id: int,
    now: dt.datetime,
) -> RatingFollowUp:
    """Close an open follow-up with the rectification made (guarded: closes once)."""
    result = session.execute(
        update(RatingFollowUp)
        .where(RatingFollowUp.id == follow_up.id, RatingFollowUp.status == FollowUpStatus.OPEN)
        .values(
            status=FollowUpStatus.CLOSED,
            rectification=rectification,
            closed_at=now,
            closed_by=staff_id,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(follow_up)
    if affected_rows(result) != 1:
        raise errors.FollowUpClosed()
    audit(
        session,
        "rating.follow_up_closed",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="rating_follow_up",
        subject_id=follow_up.id,
        details={"overdue": now > follow_up.due_at},
    )
    return follow_up


def level_counts(
    session: Session, hall_id: int, *, since: dt.datetime, until: dt.datetime
) -> dict[str, int]:
    """How many ratings of each level the hall received in [since, until)."""
    rows = session.execute(
        select(Rating.level, func.count())
        .where(Rating.hall_id == hall_id, Rating.rated_at >= since, Rating.rated_at < until)
        .group_by(Rating.level)
    ).all()
    counts = {level.value: 0 for level in RatingLevel}
    counts.update({level.value: n for level, n in rows})
    return counts

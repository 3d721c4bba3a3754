"""Ratings (好差评): the citizen rates a finished ticket or a decided application; hall managers
and department reviewers follow up the bad ones."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask.views import MethodView

from app.applications import service as applications
from app.calendar import local_day, local_instant
from app.db import get_session, utcnow
from app.errors import ValidationFailed
from app.ratings import service
from app.ratings.errors import NotRatedYet
from app.ratings.models import FollowUpStatus, Rating, RatingFollowUp
from app.ratings.service import RatingRules
from blueprints.authz import citizen_required, current_principal, require_scope, staff_required
from blueprints.openapi import Blueprint
from blueprints.pagination import page_of, page_schema
from blueprints.ratings.schemas import (
    CloseFollowUpIn,
    FollowUpOut,
    FollowUpQuery,
    RateIn,
    RatingOut,
    RatingSummaryOut,
    RatingSummaryQuery,
)

blp = Blueprint("ratings", __name__, url_prefix="", description="好差评与差评整改")

MANAGERS = ("hall_manager",)
REVIEWERS = ("reviewer",)


@dataclass
class _FollowUpView:
    """A follow-up with its overdue flag as of the request."""

    follow_up: RatingFollowUp
    overdue: bool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.follow_up, name)


def _view(follow_up: RatingFollowUp, now: dt.datetime) -> _FollowUpView:
    return _FollowUpView(
        follow_up, follow_up.status == FollowUpStatus.OPEN and follow_up.due_at < now
    )


def _follow_up_page(
    query: dict[str, Any], *, hall_id: int | None = None, department_id: int | None = None
) -> dict[str, Any]:
    """One page of a hall's or a department's follow-ups, each with its overdue flag."""
    now = utcnow()
    follow_ups = service.list_follow_ups(
        get_session(),
        hall_id=hall_id,
        department_id=department_id,
        status=query.get("status"),
        overdue_only=query["overdue"],
        now=now,
    )
    page = page_of(follow_ups, query)
    return {**page, "items": [_view(f, now) for f in page["items"]]}


@blp.route("/me/tickets/<int:ticket_id>/rating")
class TicketRating(MethodView):
    @blp.response(200, RatingOut)
    @citizen_required
    def get(self, ticket_id: int) -> Rating:
        """The caller's rating of one of their tickets."""
        return service.get_for_citizen(get_session(), ticket_id, current_principal().id)

    @blp.arguments(RateIn)
    @blp.response(201, RatingOut)
    @blp.alt_response(409, description="TICKET_NOT_RATABLE / RATING_PERIOD_OVER / ALREADY_RATED")
    @blp.alt_response(422, description="COMMENT_TOO_LONG")
    @citizen_required
    def post(self, body: dict[str, Any], ticket_id: int) -> Rating:
        """Rate a ticket within 7 days after it was finished (once); 不满意 or worse opens a
        follow-up for the hall manager."""
        session = get_session()
        rating = service.rate(
            session,
            user_id=current_principal().id,
            ticket_id=ticket_id,
            level=body["level"],
            comment=body.get("comment"),
            rules=RatingRules.from_config(current_app.config),
            now=utcnow(),
        )
        session.commit()
        return rating


@blp.route("/halls/<int:hall_id>/rating-follow-ups")
class HallFollowUps(MethodView):
    @blp.arguments(FollowUpQuery, location="query")
    @blp.response(200, page_schema(FollowUpOut))
    @staff_required(*MANAGERS)
    def get(self, query: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's follow-ups of bad ratings, most urgent first."""
        require_scope(MANAGERS, hall_id)
        return _follow_up_page(query, hall_id=hall_id)


@blp.route("/applications/<string:number>/rating")
class ApplicationRating(MethodView):
    @blp.response(200, RatingOut)
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND / NOT_RATED_YET")
    @citizen_required
    def get(self, number: str) -> Rating:
        """My rating of one of my applications."""
        session = get_session()
        application = applications.for_applicant(session, current_principal().id, number)
        rating = service.application_rating_of(session, application.id)
        if rating is None:
            raise NotRatedYet()
        return rating

    @blp.arguments(RateIn)
    @blp.response(201, RatingOut)
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND")
    @blp.alt_response(
        409, description="APPLICATION_NOT_RATABLE / RATING_PERIOD_OVER / ALREADY_RATED"
    )
    @blp.alt_response(422, description="COMMENT_TOO_LONG")
    @citizen_required
    def post(self, body: dict[str, Any], number: str) -> Rating:
        """Rate an application within 7 days after its decision (once); 不满意 or worse opens a
        follow-up for the department that decided it."""
        session = get_session()
        application = applications.for_applicant(session, current_principal().id, number)
        rating = service.rate_application(
            session,
            application,
            user_id=current_principal().id,
            level=body["level"],
            comment=body.get("comment"),
            rules=RatingRules.from_config(current_app.config),
            now=utcnow(),
        )
        session.commit()
        return rating


@blp.route("/departments/<int:department_id>/rating-follow-ups")
class DepartmentFollowUps(MethodView):
    @blp.arguments(FollowUpQuery, location="query")
    @blp.response(200, page_schema(FollowUpOut))
    @staff_required(*REVIEWERS)
    def get(self, query: dict[str, Any], department_id: int) -> dict[str, Any]:
        """The department's follow-ups of bad ratings of its applications, most urgent first."""
        require_scope(REVIEWERS, department_id)
        return _follow_up_page(query, department_id=department_id)


@blp.route("/rating-follow-ups/<int:follow_up_id>/close")
class CloseFollowUp(MethodView):
    @blp.arguments(CloseFollowUpIn)
    @blp.response(200, FollowUpOut)
    @blp.alt_response(409, description="FOLLOW_UP_CLOSED：已整改办结")
    @staff_required(*MANAGERS, *REVIEWERS)
    def post(self, body: dict[str, Any], follow_up_id: int) -> _FollowUpView:
        """Close a follow-up with the rectification made: a ticket's by its hall's manager, an
        application's by its department's reviewers."""
        session = get_session()
        follow_up = service.get_follow_up(session, follow_up_id)
        if follow_up.hall_id is not None:
            require_scope(MANAGERS, follow_up.hall_id)
        else:
            assert follow_up.department_id is not None  # one or the other
            require_scope(REVIEWERS, follow_up.department_id)
        now = utcnow()
        service.close_follow_up(
            session,
            follow_up,
            rectification=body["rectification"],
            staff_id=current_principal().id,
            now=now,
        )
        session.commit()
        return _view(follow_up, now)


@blp.route("/halls/<int:hall_id>/ratings/summary")
class RatingSummary(MethodView):
    @blp.arguments(RatingSummaryQuery, location="query")
    @blp.response(200, RatingSummaryOut)
    @staff_required(*MANAGERS)
    def get(self, query: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """How the hall was rated over local days from..to: counts per level, satisfaction."""
        require_scope(MANAGERS, hall_id)
        today = local_day(utcnow())
        end = query.get("end") or today
        start = query.get("start") or end - dt.timedelta(days=29)
        if end < start or (end - start).days > 366:
            raise ValidationFailed("日期范围有误", fields={"from": ["不能晚于 to，且不超过一年"]})
        counts = service.level_counts(
            get_session(),
            hall_id,
            since=local_instant(start, dt.time(0, 0)),
            until=local_instant(end + dt.timedelta(days=1), dt.time(0, 0)),
        )
        total = sum(counts.values())
        satisfied = total - counts["dissatisfied"] - counts["very_dissatisfied"]
        return {
            "hall_id": hall_id,
            "start": start,
            "end": end,
            "total": total,
            "counts": counts,
            "satisfaction_rate": round(satisfied / total, 4) if total else None,
        }

"""好差评: rate a finished ticket once within 7 days; bad ratings open a follow-up."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.identity.models import StaffRole, User
from app.queueing.models import Ticket, TicketStatus
from app.ratings import errors, service
from app.ratings.models import FollowUpStatus, RatingFollowUp, RatingLevel
from app.ratings.service import RatingRules
from tests.factories.appointments import HallSetup, local

RULES = RatingRules()
# Friday 6 November 2026, 16:00 in Panyu.
FINISHED = local(2026, 11, 6, 16, 0)


@pytest.fixture
def hall(appointment_hall: Callable[..., HallSetup]) -> HallSetup:
    return appointment_hall()


@pytest.fixture
def citizen(create_user: Callable[..., User]) -> User:
    return create_user()


@pytest.fixture
def done_ticket(hall: HallSetup, citizen: User, create_ticket_row: Callable[..., Ticket]) -> Ticket:
    return create_ticket_row(
        hall.categories[0],
        FINISHED - dt.timedelta(minutes=40),
        status=TicketStatus.DONE,
        user=citizen,
        window=hall.windows[0],
        wait_seconds=1200,
        service_seconds=600,
        finished_at=FINISHED,
    )


def test_a_satisfied_rating_is_stored_with_its_comment_as_given(
    session: Session, citizen: User, done_ticket: Ticket
) -> None:
    comment = "  窗口工作人员很耐心，<b>点赞</b>！  "

    rating = service.rate(
        session,
        user_id=citizen.id,
        ticket_id=done_ticket.id,
        level=RatingLevel.VERY_SATISFIED,
        comment=comment,
        rules=RULES,
        now=FINISHED + dt.timedelta(hours=1),
    )

    assert rating.comment == comment
    assert rating.score == 5 and rating.level.label == "非常满意"
    assert rating.window_id == done_ticket.window_id
    assert rating.follow_up is None
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "rating.created")).one()
    assert "点赞" not in str(entry.details)


@pytest.mark.parametrize("level", [RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED])
def test_dissatisfied_or_worse_opens_a_follow_up_due_in_three_working_days(
    session: Session, citizen: User, done_ticket: Ticket, level: RatingLevel
) -> None:
    rating = service.rate(
        session,
        user_id=citizen.id,
        ticket_id=done_ticket.id,
        level=level,
        comment=None,
        rules=RULES,
        now=FINISHED + dt.timedelta(hours=2),  # Friday evening
    )

    follow_up = session.scalars(
        select(RatingFollowUp).where(RatingFollowUp.rating_id == rating.id)
    ).one()
    assert follow_up.status == FollowUpStatus.OPEN
    # Mon, Tue, Wed: due at the end of Wednesday 11 November (local midnight).
    assert follow_up.due_at == local(2026, 11, 12, 0, 0)


def test_basically_satisfied_opens_no_follow_up(
    session: Session, citizen: User, done_ticket: Ticket
) -> None:
    rating = service.rate(
        session,
        user_id=citizen.id,
        ticket_id=done_ticket.id,
        level=RatingLevel.BASICALLY_SATISFIED,
        comment=None,
        rules=RULES,
        now=FINISHED,
    )
    assert rating.follow_up is None


def test_a_ticket_is_rated_once(session: Session, citizen: User, done_ticket: Ticket) -> None:
    kwargs = dict(
        user_id=citizen.id, ticket_id=done_ticket.id, comment=None, rules=RULES, now=FINISHED
    )
    service.rate(session, level=RatingLevel.SATISFIED, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(errors.AlreadyRated):
        service.rate(session, level=RatingLevel.VERY_DISSATISFIED, **kwargs)  # type: ignore[arg-type]


def test_rating_closes_seven_days_after_the_ticket_was_done(
    session: Session, citizen: User, done_ticket: Ticket
) -> None:
    kwargs = dict(
        user_id=citizen.id,
        ticket_id=done_ticket.id,
        level=RatingLevel.SATISFIED,
        comment=None,
        rules=RULES,
    )
    with pytest.raises(errors.RatingPeriodOver):
        service.rate(session, now=FINISHED + dt.timedelta(days=7, seconds=1), **kwargs)  # type: ignore[arg-type]
    assert service.rate(session, now=FINISHED + dt.timedelta(days=7), **kwargs)  # type: ignore[arg-type]


def test_only_finished_tickets_of_ones_own_can_be_rated(
    session: Session,
    hall: HallSetup,
    citizen: User,
    done_ticket: Ticket,
    create_user: Callable[..., User],
    create_ticket_row: Callable[..., Ticket],
) -> None:
    waiting = create_ticket_row(hall.categories[0], FINISHED, user=citizen)
    no_show = create_ticket_row(
        hall.categories[0], FINISHED, user=citizen, status=TicketStatus.NO_SHOW
    )

    def rate(user: User, ticket: Ticket) -> None:
        service.rate(
            session,
            user_id=user.id,
            ticket_id=ticket.id,
            level=RatingLevel.SATISFIED,
            comment=None,
            rules=RULES,
            now=FINISHED,
        )

    with pytest.raises(errors.TicketNotRatable):
        rate(citizen, waiting)
    with pytest.raises(errors.TicketNotRatable):
        rate(citizen, no_show)
    with pytest.raises(errors.TicketNotFound):
        rate(create_user(), done_ticket)


def test_a_comment_over_the_limit_is_refused(
    session: Session, citizen: User, done_ticket: Ticket
) -> None:
    with pytest.raises(errors.CommentTooLong) as refused:
        service.rate(
            session,
            user_id=citizen.id,
            ticket_id=done_ticket.id,
            level=RatingLevel.SATISFIED,
            comment="好" * 501,
            rules=RULES,
            now=FINISHED,
        )
    assert refused.value.details == {"max_length": 500}


def test_rating_over_the_api_never_logs_the_comment(
    client: FlaskClient,
    citizen: User,
    done_ticket: Ticket,
    citizen_headers: Callable[[User], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("blueprints.ratings.routes.utcnow", lambda: FINISHED + dt.timedelta(days=1))
    caplog.set_level(logging.DEBUG)
    path = f"/api/v1/me/tickets/{done_ticket.id}/rating"

    response = client.post(
        path,
        json={"level": "dissatisfied", "comment": "等了很久，电话13800138000"},
        headers=citizen_headers(citizen),
    )
    again = client.post(path, json={"level": "satisfied"}, headers=citizen_headers(citizen))
    shown = client.get(path, headers=citizen_headers(citizen))

    assert response.status_code == 201, response.json
    assert response.json["level_label"] == "不满意" and response.json["score"] == 2
    assert response.json["follow_up_due_at"] is not None
    assert again.status_code == 409 and again.json["code"] == "ALREADY_RATED"
    assert shown.status_code == 200 and shown.json["comment"] == "等了很久，电话13800138000"
    assert "13800138000" not in caplog.text and "等了很久" not in caplog.text
    bad = client.post(path, json={"level": "meh"}, headers=citizen_headers(citizen))
    assert bad.status_code == 422


def test_a_ticket_not_rated_yet_says_so_and_not_that_the_ticket_is_missing(
    client: FlaskClient,
    citizen: User,
    done_ticket: Ticket,
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    path = f"/api/v1/me/tickets/{done_ticket.id}/rating"
    unrated = client.get(path, headers=citizen_headers(citizen))
    missing = client.get("/api/v1/me/tickets/987654321/rating", headers=citizen_headers(citizen))

    assert unrated.status_code == 404 and unrated.json["code"] == "NOT_RATED_YET"
    assert unrated.json["message"] == "该次服务尚未评价"
    assert missing.status_code == 404 and missing.json["code"] == "TICKET_NOT_FOUND"


def test_the_hall_manager_closes_a_follow_up_with_a_rectification(
    client: FlaskClient,
    session: Session,
    hall: HallSetup,
    appointment_hall: Callable[..., HallSetup],
    citizen: User,
    done_ticket: Ticket,
    create_staff: Callable[..., object],
    staff_headers: Callable[[object], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rating = service.rate(
        session,
        user_id=citizen.id,
        ticket_id=done_ticket.id,
        level=RatingLevel.VERY_DISSATISFIED,
        comment="态度差",
        rules=RULES,
        now=FINISHED,
    )
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, hall.id, None)])
    outsider = create_staff(grants=[(StaffRole.HALL_MANAGER, appointment_hall().id, None)])
    late = local(2026, 11, 13, 9, 0)  # past the deadline
    monkeypatch.setattr("blueprints.ratings.routes.utcnow", lambda: late)

    listed = client.get(
        f"/api/v1/halls/{hall.id}/rating-follow-ups?overdue=true", headers=staff_headers(manager)
    )
    assert listed.status_code == 200
    (item,) = listed.json["items"]
    assert item["overdue"] is True and item["rating"]["comment"] == "态度差"
    assert item["rating"]["id"] == rating.id

    path = f"/api/v1/rating-follow-ups/{item['id']}/close"
    body = {"rectification": "已约谈窗口人员并开展服务礼仪培训，已回访群众。"}
    assert client.post(path, json=body, headers=staff_headers(outsider)).status_code == 403
    closed = client.post(path, json=body, headers=staff_headers(manager))
    twice = client.post(path, json=body, headers=staff_headers(manager))

    assert closed.status_code == 200, closed.json
    assert closed.json["status"] == "closed" and closed.json["overdue"] is False
    assert closed.json["rectification"] == body["rectification"]
    assert closed.json["closed_by"] == manager.id  # type: ignore[attr-defined]
    assert twice.status_code == 409 and twice.json["code"] == "FOLLOW_UP_CLOSED"

    summary = client.get(
        f"/api/v1/halls/{hall.id}/ratings/summary?from=2026-11-01&to=2026-11-30",
        headers=staff_headers(manager),
    )
    assert summary.status_code == 200
    assert summary.json["total"] == 1 and summary.json["counts"]["very_dissatisfied"] == 1
    assert summary.json["satisfaction_rate"] == 0.0

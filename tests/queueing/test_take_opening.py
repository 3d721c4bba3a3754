"""A take by hall code reads whether the hall is open in its own statement: the same answers as
`halls.is_open` (special days, public holidays, make-up workdays, lunch breaks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from app import calendar
from app.audit.service import Actor
from app.halls import service as halls
from app.halls.models import SpecialDay
from app.identity.access_tokens import TokenSettings
from app.identity.models import User
from app.identity.principals import citizen_principal
from app.identity.sessions import start_session
from app.queueing import codes
from app.queueing.demo import HALL_LAT, HALL_LNG, QueueHall
from app.queueing.errors import HallClosed
from app.queueing.models import TicketSource
from app.queueing.settings import QueueSettings
from app.queueing.taking import issue_ticket, read_hall_code_take
from tests.support.database import statements_sent

WEEKDAYS = [(d, dt.time(9), dt.time(12)) for d in range(5)] + [
    (d, dt.time(13, 30), dt.time(17)) for d in range(5)
]
FRIDAY = dt.date(2026, 11, 27)
NATIONAL_DAY = dt.date(2026, 10, 1)  # a Thursday, a public holiday
MAKEUP_SATURDAY = dt.date(2026, 10, 10)  # 调休上班
PLAIN_SATURDAY = dt.date(2026, 11, 28)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return calendar.local_instant(day, dt.time(hour, minute))


def _special(closed: bool, opens: dt.time | None, closes: dt.time | None) -> Callable[..., None]:
    def arrange(session: Session, hall_id: int) -> None:
        # Straight to the table: `set_special_day` refuses an open day without hours, a row
        # `hours_on` still has to read as closed.
        session.add(
            SpecialDay(hall_id=hall_id, day=FRIDAY, closed=closed, opens_at=opens, closes_at=closes)
        )
        session.flush()

    return arrange


def _profile(**values: Any) -> Callable[..., None]:
    def arrange(session: Session, hall_id: int) -> None:
        halls.update_profile(session, hall_id, values)

    return arrange


def _hours(*rows: tuple[int, dt.time, dt.time]) -> Callable[..., None]:
    def arrange(session: Session, hall_id: int) -> None:
        halls.replace_weekly_hours(session, hall_id, [*WEEKDAYS, *rows])

    return arrange


def _nothing(session: Session, hall_id: int) -> None:
    return None


CASES = [
    ("weekday-morning", _nothing, _at(FRIDAY, 9), True),
    ("before-opening", _nothing, _at(FRIDAY, 8, 59), False),
    ("lunch-break", _nothing, _at(FRIDAY, 12, 30), False),
    ("last-minute", _nothing, _at(FRIDAY, 16, 59), True),
    ("closing-time", _nothing, _at(FRIDAY, 17), False),
    ("plain-saturday", _nothing, _at(PLAIN_SATURDAY, 10), False),
    ("public-holiday", _nothing, _at(NATIONAL_DAY, 10), False),
    (
        "holiday-hall-opens",
        _profile(open_on_public_holidays=True),
        _at(NATIONAL_DAY, 10),
        True,
    ),
    ("makeup-workday-monday-hours", _nothing, _at(MAKEUP_SATURDAY, 10), True),
    (
        "makeup-workday-chosen-weekday",
        lambda s, h: (
            _hours((6, dt.time(14), dt.time(15)))(s, h),
            _profile(makeup_workday_weekday=6)(s, h),
        ),
        _at(MAKEUP_SATURDAY, 10),
        False,
    ),
    ("special-closed", _special(True, None, None), _at(FRIDAY, 10), False),
    (
        "special-hours-evening",
        _special(False, dt.time(8), dt.time(20)),
        _at(FRIDAY, 19),
        True,
    ),
    (
        "special-hours-before",
        _special(False, dt.time(11), dt.time(20)),
        _at(FRIDAY, 10),
        False,
    ),
    ("special-open-without-hours", _special(False, None, None), _at(FRIDAY, 10), False),
]


@pytest.mark.parametrize(
    ("arrange", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_take_reads_opening_as_halls_decides_it(
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    queue_settings: QueueSettings,
    arrange: Callable[[Session, int], None],
    now: dt.datetime,
    expected: bool,
) -> None:
    qh = create_queue_hall(hours=WEEKDAYS)
    arrange(session, qh.hall.id)
    code = codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None)
    user = create_user()

    take = _read_take(session, queue_settings, qh, code, user, now)

    assert halls.is_open(session, qh.hall.id, now) is expected
    assert take.state.open_now is expected
    if not expected:  # and the take itself is refused on it
        with pytest.raises(HallClosed):
            _issue(session, queue_settings, take, user, now)


def _read_take(
    session: Session,
    settings: QueueSettings,
    qh: QueueHall,
    code: Any,
    user: User,
    now: dt.datetime,
    family_id: str | None = None,
) -> Any:
    """The hall-code take's read for category A, from the hall's position, by a signed-in
    `user` (a login family of their own unless `family_id` names one)."""
    return read_hall_code_take(
        session,
        settings,
        category_id=qh.categories["A"].id,
        token=codes.printed_token(settings, code),
        user_id=user.id,
        idempotency_key=None,
        now=now,
        latitude=HALL_LAT,
        longitude=HALL_LNG,
        family_id=family_id or _login_family(session, user, now),
        confirm_family=_must_be_active,
    )


def _login_family(session: Session, user: User, now: dt.datetime) -> str:
    """A login of `user`'s, whose family the take's read asks about."""
    settings = TokenSettings(secret="s" * 32, issuer="i", audience="a", ttl_seconds=60)
    pair = start_session(
        session, citizen_principal(user), settings=settings, refresh_ttl_seconds=60, now=now
    )
    return pair.family_id


def _must_be_active(active: bool) -> None:
    assert active


def _issue(
    session: Session, settings: QueueSettings, take: Any, user: User, now: dt.datetime
) -> Any:
    return issue_ticket(
        session,
        category=take.category,
        user_id=user.id,
        source=TicketSource.HALL_CODE,
        actor=Actor("user", user.id),
        now=now,
        settings=settings,
        state=take.state,
    )


def test_a_take_by_hall_code_reads_opening_without_a_statement_of_its_own(
    app: Flask,
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    queue_settings: QueueSettings,
) -> None:
    qh = create_queue_hall(hours=WEEKDAYS)
    code = codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None)
    user = create_user()
    session.flush()
    now = _at(FRIDAY, 10)
    family_id = _login_family(session, user, now)
    with statements_sent(app.extensions["db"].engine) as statements:
        take = _read_take(session, queue_settings, qh, code, user, now, family_id)
        read = len(statements)
        issued = _issue(session, queue_settings, take, user, now)

    assert issued.created
    assert read == 1  # the category, the code, the take's state, the opening rules, the login
    # Then only the draw and its writes: one statement on PostgreSQL; four elsewhere (the next
    # number, the ticket, the counter, the transition).
    dialect = app.extensions["db"].engine.dialect.name
    assert len(statements) - read == (1 if dialect == "postgresql" else 4)

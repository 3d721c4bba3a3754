"""Opening hours with the Chinese public-holiday calendar and make-up workdays."""

from __future__ import annotations

import datetime as dt

import pytest

from app import calendar
from app.halls import service as halls
from app.halls.errors import InvalidHours

WEEKDAYS = [(d, dt.time(9), dt.time(12)) for d in range(5)] + [
    (d, dt.time(13, 30), dt.time(17)) for d in range(5)
]


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return calendar.local_instant(day, dt.time(hour, minute))


@pytest.fixture
def hall_id(session, create_hall) -> int:
    hall = create_hall()
    halls.replace_weekly_hours(session, hall.id, WEEKDAYS)
    return hall.id


def test_weekday_hours_with_a_lunch_break(session, hall_id):
    friday = dt.date(2026, 11, 27)
    assert halls.is_open(session, hall_id, local(friday, 9))
    assert not halls.is_open(session, hall_id, local(friday, 12, 30))
    assert halls.is_open(session, hall_id, local(friday, 16, 59))
    assert not halls.is_open(session, hall_id, local(friday, 17))
    assert halls.closing_time(session, hall_id, friday) == local(friday, 17)


def test_public_holiday_closes_and_makeup_workday_opens(session, hall_id):
    national_day = dt.date(2026, 10, 1)  # a Thursday
    makeup_saturday = dt.date(2026, 10, 10)  # 调休上班
    plain_saturday = dt.date(2026, 11, 28)
    assert calendar.day_kind(national_day) == "holiday"
    assert not halls.is_open(session, hall_id, local(national_day, 10))
    assert calendar.day_kind(makeup_saturday) == "makeup"
    assert halls.is_open(session, hall_id, local(makeup_saturday, 10))
    assert not halls.is_open(session, hall_id, local(plain_saturday, 10))


def test_hall_open_on_holidays_and_saturdays(session, hall_id):
    halls.update_profile(session, hall_id, {"open_on_public_holidays": True})
    halls.replace_weekly_hours(session, hall_id, [*WEEKDAYS, (5, dt.time(9), dt.time(12))])
    assert halls.is_open(session, hall_id, local(dt.date(2026, 10, 1), 10))
    assert halls.is_open(session, hall_id, local(dt.date(2026, 11, 28), 10))


def test_special_day_overrides_the_calendar(session, hall_id):
    friday = dt.date(2026, 11, 27)
    halls.set_special_day(session, hall_id, friday, closed=True, note="系统升级")
    assert not halls.is_open(session, hall_id, local(friday, 10))
    halls.set_special_day(
        session, hall_id, friday, closed=False, opens_at=dt.time(8), closes_at=dt.time(20)
    )
    assert halls.is_open(session, hall_id, local(friday, 19))
    halls.delete_special_day(session, hall_id, friday)
    assert not halls.is_open(session, hall_id, local(friday, 19))


def test_overlapping_hours_are_refused(session, hall_id):
    with pytest.raises(InvalidHours):
        halls.replace_weekly_hours(
            session, hall_id, [(0, dt.time(9), dt.time(12)), (0, dt.time(11), dt.time(14))]
        )
    with pytest.raises(InvalidHours):
        halls.replace_weekly_hours(session, hall_id, [(0, dt.time(12), dt.time(9))])


def test_service_day_is_local(session):
    assert calendar.local_day(dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)) == dt.date(
        2026, 11, 28
    )
    assert calendar.local_day(dt.datetime(2026, 11, 27, 15, 59, tzinfo=dt.UTC)) == dt.date(
        2026, 11, 27
    )

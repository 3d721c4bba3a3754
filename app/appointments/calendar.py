"""Working days and local dates for appointments and rating deadlines.

The calendar itself (public holidays, make-up workdays, Asia/Shanghai days) is the halls
module's; this adds counting in working days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from app.halls.service import LOCAL_TZ, day_kind, local_day, local_instant

__all__ = ["LOCAL_TZ", "add_working_days", "is_working_day", "local_date", "local_moment"]

local_date = local_day
local_moment = local_instant


def is_working_day(day: dt.date) -> bool:
    """A working day by the State Council's calendar, make-up workdays (调休上班) included."""
    return day_kind(day) in ("workday", "makeup")


def working_days(start: dt.date) -> Iterator[dt.date]:
    """Working days from `start` (included when it is one), endlessly."""
    day = start
    while True:
        if is_working_day(day):
            yield day
        day += dt.timedelta(days=1)


def add_working_days(moment: dt.datetime, count: int) -> dt.datetime:
    """The end (next local midnight) of the `count`-th working day after `moment`'s day.

    A follow-up opened on a Friday evening with 3 working days is due at the end of Wednesday.
    """
    days = working_days(local_date(moment) + dt.timedelta(days=1))
    last = next(days)
    for _ in range(count - 1):
        last = next(days)
    return local_moment(last + dt.timedelta(days=1), dt.time(0, 0))

"""The one working-day calendar of the district: local (Beijing) days, public holidays and
make-up workdays, and time limits counted in working days.

Days are local to Asia/Shanghai. The State Council's schedule comes from `chinese_calendar`
(pinned); each year's schedule is published in the autumn before, and a year the pinned
release does not know yet is entered in `data/calendar/overrides.json` (day -> holiday |
makeup | workday | weekend) until the library is upgraded. A year known to neither still keeps
the days the law itself fixes (`statutory_holidays`); its days in lieu and make-up workdays
come only with the notice, so it is otherwise counted as plain weekdays and weekends, and
`unknown_years` says so (the readiness check reports it).

Halls use it for opening days, appointments for bookable days, ratings and applications for
their deadlines. A deadline counts working days after the day it starts, ends at the local
midnight after the last one, and stops while the case waits for the applicant (补正).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
from lunar_python import Lunar

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
OVERRIDES_FILE = Path(__file__).resolve().parent.parent / "data" / "calendar" / "overrides.json"
DAY_KINDS = ("workday", "weekend", "holiday", "makeup")
# The first year of the statutory holidays as the 2024 revision of the law sets them.
LAW_FROM = 2025


def local_day(now: dt.datetime) -> dt.date:
    """The Asia/Shanghai calendar day of an aware instant."""
    return now.astimezone(LOCAL_TZ).date()


def local_instant(day: dt.date, at: dt.time) -> dt.datetime:
    """The aware UTC instant of a local wall-clock time on `day`."""
    return dt.datetime.combine(day, at, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def overrides() -> Mapping[dt.date, str]:
    """The days the published schedule sets that the pinned library does not know."""
    return load_overrides(OVERRIDES_FILE)


@functools.cache
def load_overrides(path: Path) -> Mapping[dt.date, str]:
    """An override table: day -> kind, checked."""
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    table = {}
    for day, kind in raw.get("days", {}).items():
        if kind not in DAY_KINDS:
            raise ValueError(f"{path}: {day} is {kind!r}, not one of {DAY_KINDS}")
        table[dt.date.fromisoformat(day)] = kind
    return table


# The pinned library's answer for a day never changes in a process, and asking it costs ~15 µs
# (it checks the year's range each time): a 20-working-day deadline asks ~30 times, and a 秒批
# counts three deadlines in its request.
@functools.lru_cache(maxsize=4096)
def _library_kind(day: dt.date) -> str | None:
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None  # a year the pinned release does not cover
    if is_holiday:
        return "holiday" if name is not None else "weekend"
    return "makeup" if day.weekday() >= 5 else "workday"


def day_kind(day: dt.date) -> str:
    """'workday', 'weekend', 'holiday' (statutory or in lieu) or 'makeup' (调休上班)."""
    override = overrides().get(day)
    if override is not None:
        return override
    known = _library_kind(day)
    if known is not None:
        return known
    if day in statutory_holidays(day.year):
        return "holiday"
    return "weekend" if day.weekday() >= 5 else "workday"


@functools.cache
def statutory_holidays(year: int) -> frozenset[dt.date]:
    """The 13 days of `year` the law gives as public holidays (全国年节及纪念日放假办法, as
    revised in 2024, from 2025 on): 元旦 1, 春节 4 (除夕 to 正月初三), 清明 1, 劳动节 2,
    端午 1, 中秋 1, 国庆 3. The State Council's yearly notice adds the days in lieu and the
    make-up workdays around them; these days are holidays whatever it says.

    None before 2025 (other rules; the library knows those years) or after 2100 (beyond the
    solar-term tables)."""
    if not LAW_FROM <= year <= 2100:
        return frozenset()
    spring_festival = _solar(Lunar.fromYmd(year, 1, 1))
    qingming = next(
        day
        for day, term in chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 10))
        if term == "清明"
    )
    return frozenset(
        {
            dt.date(year, 1, 1),
            *(spring_festival + dt.timedelta(days=offset) for offset in range(-1, 3)),
            qingming,
            dt.date(year, 5, 1),
            dt.date(year, 5, 2),
            _solar(Lunar.fromYmd(year, 5, 5)),
            _solar(Lunar.fromYmd(year, 8, 15)),
            *(dt.date(year, 10, day) for day in (1, 2, 3)),
        }
    )


def _solar(lunar: Lunar) -> dt.date:
    solar = lunar.getSolar()
    return dt.date(solar.getYear(), solar.getMonth(), solar.getDay())


def unknown_years(years: Iterable[int]) -> list[int]:
    """Those of `years` whose holidays neither the library nor the override table knows."""
    listed = {day.year for day in overrides()}
    return [
        year for year in years if year not in listed and _library_kind(dt.date(year, 1, 1)) is None
    ]


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
    days = working_days(local_day(moment) + dt.timedelta(days=1))
    last = next(days)
    for _ in range(count - 1):
        last = next(days)
    return local_instant(last + dt.timedelta(days=1), dt.time(0, 0))


def working_days_between(first: dt.date, last: dt.date) -> int:
    """How many working days lie in [first, last]."""
    count, day = 0, first
    while day <= last:
        count += is_working_day(day)
        day += dt.timedelta(days=1)
    return count


def deadline(
    start: dt.datetime,
    count: int,
    pauses: Iterable[tuple[dt.datetime, dt.datetime | None]] = (),
) -> dt.datetime | None:
    """When a limit of `count` working days from `start` runs out, with the clock stopped
    during each pause (补正: from the request for more material to the resubmission).

    A working day on which the case waited at any moment does not count, so the applicant's
    time never eats into the department's. None while a pause is still open.
    """
    paused_days: set[dt.date] = set()
    for begins, ends in pauses:
        if ends is None:
            return None
        day, last = local_day(begins), local_day(ends)
        while day <= last:
            paused_days.add(day)
            day += dt.timedelta(days=1)
    if count <= 0:
        return start
    counted, day = 0, local_day(start)
    while counted < count:
        day += dt.timedelta(days=1)
        if is_working_day(day) and day not in paused_days:
            counted += 1
    return local_instant(day + dt.timedelta(days=1), dt.time(0, 0))

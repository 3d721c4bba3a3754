"""When a hall is open: the rules of a local day, written once for both of their readers.

The rules, first match wins:

1. a special day (`SpecialDay`) decides alone: closed, or open within its hours (an open
   special day without both times is closed);
2. a public holiday (statutory or in lieu, `calendar.day_kind`) closes the hall unless its
   profile opens on holidays (no profile: closed);
3. otherwise the weekly hours of the weekday that applies: the day's own, or on a make-up
   workday (调休上班) the profile's chosen weekday (Monday without a profile).

Two readers, each in one statement: `halls.service.hours_on` reads a day's intervals
(`hours_statement`), and a take reads whether the hall is open at one instant inside the take's
own statement (`open_at_columns`), so that opening costs it no round trip. Both take the SQL
pieces below and end in `rule_on`; `tests/queueing/test_take_opening.py` holds them to the same
answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import Time, and_, bindparam, case, exists, false, func, select, true
from sqlalchemy.orm import aliased

from app.calendar import LOCAL_TZ, day_kind
from app.db import built_once
from app.halls.models import HallProfile, OpeningHours, SpecialDay
from app.organisation.models import Hall

Interval = tuple[dt.time, dt.time]
Rule = Literal["special", "closed", "weekly"]


def rule_on(kind: str, *, special_day: bool, opens_on_holidays: bool | None) -> Rule:
    """Which rule decides a day of `kind` ('holiday', 'makeup', ...): its special day, closed,
    or the weekly hours."""
    if special_day:
        return "special"
    if kind == "holiday" and not opens_on_holidays:
        return "closed"
    return "weekly"


def day_values(day: dt.date) -> tuple[str, dict[str, Any]]:
    """The day's kind and the values the statements below are bound with for it (`day`,
    `weekday`); the kind also picks the statement (`kind == "makeup"`)."""
    return day_kind(day), {"day": day, "weekday": day.weekday()}


def instant_values(now: dt.datetime) -> tuple[str, dict[str, Any]]:
    """`day_values` of `now`'s local day, with the local `clock` that `open_at_columns` reads."""
    local = now.astimezone(LOCAL_TZ)
    kind, values = day_values(local.date())
    return kind, {**values, "clock": local.time().replace(tzinfo=None)}


# -- the SQL pieces, for a hall given as a column of the enclosing statement -------------------


def _special_day_of(special: Any, hall_id: Any) -> Any:
    return and_(special.hall_id == hall_id, special.day == bindparam("day"))


def _special_day_opens(special: Any) -> Any:
    # `set_special_day` refuses an open day without both times; a row written otherwise is
    # still read as closed.
    return and_(
        special.closed.is_(false()), special.opens_at.is_not(None), special.closes_at.is_not(None)
    )


def _opens_on_holidays(hall_id: Any) -> Any:
    # NULL without a profile, which closes the hall on holidays as False does.
    profile = aliased(HallProfile)
    return (
        select(profile.open_on_public_holidays)
        .where(profile.hall_id == hall_id)
        # Correlated to the hall however deep it is used (an EXISTS inside the take's select).
        .correlate_except(profile)
        .scalar_subquery()
    )


def _weekly_hours_of(hours: Any, hall_id: Any, makeup_day: bool) -> Any:
    weekday: Any = bindparam("weekday")
    if makeup_day:
        profile = aliased(HallProfile)
        weekday = func.coalesce(
            select(profile.makeup_workday_weekday)
            .where(profile.hall_id == hall_id)
            .correlate_except(profile)
            .scalar_subquery(),
            0,
        )
    return and_(hours.hall_id == hall_id, hours.weekday == weekday)


# -- reader 1: the day's intervals (halls.service.hours_on) ------------------------------------


@built_once
def hours_statement(makeup_day: bool) -> Any:
    """The hall `hall_id` on `day_values(day)`: one row per weekly interval of the weekday that
    applies (one row with NULL hours without any), each with the special day and the holiday
    rule; no row for an unknown hall. Read it with `intervals_from`."""
    return (
        select(
            SpecialDay.id,
            _special_day_opens(SpecialDay),
            SpecialDay.opens_at,
            SpecialDay.closes_at,
            _opens_on_holidays(Hall.id),
            OpeningHours.opens_at,
            OpeningHours.closes_at,
        )
        .select_from(Hall)
        .outerjoin(SpecialDay, _special_day_of(SpecialDay, Hall.id))
        .outerjoin(OpeningHours, _weekly_hours_of(OpeningHours, Hall.id, makeup_day))
        .where(Hall.id == bindparam("hall_id"))
        .order_by(OpeningHours.opens_at)
    )


def intervals_from(kind: str, rows: Any) -> list[Interval]:
    """The opening intervals `hours_statement`'s rows give on a day of `kind`; empty: closed."""
    if not rows:
        return []
    special_id, special_opens, special_from, special_to, on_holidays = rows[0][:5]
    rule = rule_on(kind, special_day=special_id is not None, opens_on_holidays=on_holidays)
    if rule == "special":
        return [(special_from, special_to)] if special_opens else []
    if rule == "closed":
        return []
    return [(row[5], row[6]) for row in rows if row[5] is not None]


# -- reader 2: open at one instant, inside a take's statement -----------------------------------


def open_at_columns(hall_id: Any, makeup_day: bool) -> tuple[Any, Any, Any]:
    """Three columns for the hall `hall_id` (a column of the enclosing statement) bound with
    `instant_values(now)`: whether its special day has it open at `clock` (NULL without one),
    its holiday rule, and whether its weekly hours do. Read them with `open_from`."""
    clock: Any = bindparam("clock", type_=Time())
    special, hours = aliased(SpecialDay), aliased(OpeningHours)
    special_open = (
        select(
            case(
                (
                    and_(
                        _special_day_opens(special),
                        special.opens_at <= clock,
                        clock < special.closes_at,
                    ),
                    true(),
                ),
                else_=false(),
            )
        )
        .where(_special_day_of(special, hall_id))
        .correlate_except(special)
        .scalar_subquery()
    )
    weekly_open = (
        exists()
        .where(
            _weekly_hours_of(hours, hall_id, makeup_day),
            hours.opens_at <= clock,
            clock < hours.closes_at,
        )
        .correlate_except(hours)
    )
    return special_open, _opens_on_holidays(hall_id), weekly_open


def open_from(kind: str, special_open: Any, opens_on_holidays: Any, weekly_open: Any) -> bool:
    """Whether the hall is open, from `open_at_columns`' values on a day of `kind`."""
    rule = rule_on(kind, special_day=special_open is not None, opens_on_holidays=opens_on_holidays)
    if rule == "special":
        return bool(special_open)
    return rule == "weekly" and bool(weekly_open)

"""Hall calendars (opening hours, public holidays, make-up workdays) and hall set-up.

Business days are local to Asia/Shanghai and the public-holiday calendar is `app.calendar`'s;
the rules that decide a day's opening hours (special days, public holidays, make-up workdays)
are written once, in `app.halls.opening`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.calendar import LOCAL_TZ, local_instant
from app.halls import opening
from app.halls.errors import (
    CategoryNotFound,
    HallConflict,
    HallNotFound,
    InvalidHours,
    WindowNotFound,
)
from app.halls.models import (
    HallProfile,
    OpeningHours,
    ServiceCategory,
    SpecialDay,
    Window,
    WindowCategory,
)
from app.organisation.models import Hall

log = logging.getLogger(__name__)

Interval = opening.Interval


def list_halls(session: Session) -> Sequence[Hall]:
    """Every hall, by code."""
    return session.scalars(select(Hall).order_by(Hall.code)).all()


def get_hall(session: Session, hall_id: int) -> Hall:
    hall = session.get(Hall, hall_id)
    if hall is None:
        raise HallNotFound(hall_id=hall_id)
    return hall


def get_profile(session: Session, hall_id: int) -> HallProfile:
    """The hall's profile, created empty on first use."""
    profile = session.get(HallProfile, hall_id)
    if profile is None:
        get_hall(session, hall_id)
        profile = HallProfile(hall_id=hall_id, address="")
        session.add(profile)
        session.flush()
    return profile


def weekly_hours(session: Session, hall_id: int) -> dict[int, list[Interval]]:
    """Weekday (0 = Monday) -> opening intervals in local time."""
    rows = session.scalars(
        select(OpeningHours)
        .where(OpeningHours.hall_id == hall_id)
        .order_by(OpeningHours.weekday, OpeningHours.opens_at)
    )
    result: dict[int, list[Interval]] = {d: [] for d in range(7)}
    for row in rows:
        result[row.weekday].append((row.opens_at, row.closes_at))
    return result


def hours_on(session: Session, hall_id: int, day: dt.date) -> list[Interval]:
    """The hall's opening intervals on a local day; empty when closed."""
    # One read: the special day if any, the profile's holiday rule, and the weekly hours of
    # the one weekday that can apply (the rules: `opening`).
    kind, values = opening.day_values(day)
    rows = session.execute(
        opening.hours_statement(kind == "makeup"), {**values, "hall_id": hall_id}
    ).all()
    return opening.intervals_from(kind, rows)


def is_open(session: Session, hall_id: int, now: dt.datetime) -> bool:
    """Whether the hall is open at `now`."""
    local = now.astimezone(LOCAL_TZ)
    clock = local.time().replace(tzinfo=None)
    return any(
        opens <= clock < closes for opens, closes in hours_on(session, hall_id, local.date())
    )


def closing_time(session: Session, hall_id: int, day: dt.date) -> dt.datetime | None:
    """When the hall closes on `day` (UTC), None when closed all day."""
    intervals = hours_on(session, hall_id, day)
    return local_instant(day, max(c for _, c in intervals)) if intervals else None


# -- set-up (admin / hall manager) ------------------------------------------------------------


def update_profile(session: Session, hall_id: int, values: dict[str, Any]) -> HallProfile:
    profile = get_profile(session, hall_id)
    for key, value in values.items():
        setattr(profile, key, value)
    session.flush()
    return profile


def replace_weekly_hours(
    session: Session, hall_id: int, intervals: Iterable[tuple[int, dt.time, dt.time]]
) -> dict[int, list[Interval]]:
    """Replace the hall's weekly hours with (weekday, opens, closes) rows."""
    get_hall(session, hall_id)
    rows = sorted(intervals)
    for weekday, opens, closes in rows:
        if not 0 <= weekday <= 6 or opens >= closes:
            raise InvalidHours(weekday=weekday)
    for previous, current in itertools.pairwise(rows):
        if previous[0] == current[0] and current[1] < previous[2]:
            raise InvalidHours("同一天的营业时段不能重叠", weekday=current[0])
    session.execute(delete(OpeningHours).where(OpeningHours.hall_id == hall_id))
    for weekday, opens, closes in rows:
        session.add(
            OpeningHours(hall_id=hall_id, weekday=weekday, opens_at=opens, closes_at=closes)
        )
    session.flush()
    return weekly_hours(session, hall_id)


def set_special_day(
    session: Session,
    hall_id: int,
    day: dt.date,
    *,
    closed: bool,
    opens_at: dt.time | None = None,
    closes_at: dt.time | None = None,
    note: str | None = None,
) -> SpecialDay:
    """Override one date: closed, or open with given hours."""
    get_hall(session, hall_id)
    if not closed and (opens_at is None or closes_at is None or opens_at >= closes_at):
        raise InvalidHours("特殊营业日需给出有效的开始与结束时间")
    row = session.scalars(
        select(SpecialDay).where(SpecialDay.hall_id == hall_id, SpecialDay.day == day)
    ).first()
    if row is None:
        row = SpecialDay(hall_id=hall_id, day=day)
        session.add(row)
    row.closed, row.opens_at, row.closes_at, row.note = closed, opens_at, closes_at, note
    session.flush()
    return row


def delete_special_day(session: Session, hall_id: int, day: dt.date) -> None:
    session.execute(delete(SpecialDay).where(SpecialDay.hall_id == hall_id, SpecialDay.day == day))
    session.flush()


def list_categories(
    session: Session, hall_id: int, *, active_only: bool = False
) -> list[ServiceCategory]:
    query = select(ServiceCategory).where(ServiceCategory.hall_id == hall_id)
    if active_only:
        query = query.where(ServiceCategory.active.is_(True))
    return list(session.scalars(query.order_by(ServiceCategory.sort_order, ServiceCategory.prefix)))


def get_category(session: Session, category_id: int) -> ServiceCategory:
    category = session.get(ServiceCategory, category_id)
    if category is None:
        raise CategoryNotFound(category_id=category_id)
    return category


def _flush_unique(session: Session, new: object | None = None) -> None:
    # The unique constraints are the guard; a savepoint keeps the transaction usable. A new
    # object is added inside it: begin_nested() flushes what is pending before the savepoint.
    try:
        with session.begin_nested():
            if new is not None:
                session.add(new)
            session.flush()
    except IntegrityError as error:
        raise HallConflict() from error


def create_category(session: Session, hall_id: int, values: dict[str, Any]) -> ServiceCategory:
    get_hall(session, hall_id)
    category = ServiceCategory(hall_id=hall_id, **values)
    _flush_unique(session, category)
    return category


def update_category(
    session: Session, category: ServiceCategory, values: dict[str, Any]
) -> ServiceCategory:
    for key, value in values.items():
        setattr(category, key, value)
    _flush_unique(session)
    return category


def list_windows(session: Session, hall_id: int) -> list[Window]:
    return list(
        session.scalars(select(Window).where(Window.hall_id == hall_id).order_by(Window.number))
    )


def get_window(session: Session, window_id: int) -> Window:
    window = session.get(Window, window_id)
    if window is None:
        raise WindowNotFound(window_id=window_id)
    return window


def _categories_of_hall(
    session: Session, hall_id: int, ids: Sequence[int]
) -> list[ServiceCategory]:
    categories = [get_category(session, i) for i in dict.fromkeys(ids)]
    for category in categories:
        if category.hall_id != hall_id:
            raise CategoryNotFound("该业务类别不属于本大厅", category_id=category.id)
    return categories


def create_window(
    session: Session, hall_id: int, *, number: int, label: str | None, category_ids: Sequence[int]
) -> Window:
    get_hall(session, hall_id)
    categories = _categories_of_hall(session, hall_id, category_ids)
    window = Window(hall_id=hall_id, number=number, label=label)
    window.categories = categories
    _flush_unique(session, window)
    return window


def update_window(session: Session, window: Window, values: dict[str, Any]) -> Window:
    if "category_ids" in values:
        window.categories = _categories_of_hall(session, window.hall_id, values.pop("category_ids"))
    for key, value in values.items():
        setattr(window, key, value)
    _flush_unique(session)
    return window


def windows_serving(session: Session, category_id: int) -> list[Window]:
    return list(
        session.scalars(
            select(Window)
            .join(WindowCategory, WindowCategory.window_id == Window.id)
            .where(WindowCategory.category_id == category_id)
        )
    )

"""Queue statistics per hall and day, by category or window: issued, served, no-shows, and
mean and p90 of wait (take -> call) and service (serving, holds excluded) times.

Counts and means are one grouped SQL query (portable SQLite/PostgreSQL). The p90 is
`percentile_cont` on PostgreSQL; SQLite has no percentile, so there it is computed in Python
from the same per-ticket durations, with the same linear interpolation.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.halls.models import ServiceCategory, Window
from app.organisation.models import Hall
from app.queueing.models import Ticket, TicketStatus


class StatsRangeInvalid(ValidationFailed):
    code = "STATS_RANGE_INVALID"
    message = "统计日期范围有误（结束日期不能早于开始日期，且不超过规定天数）"


class GroupBy(enum.StrEnum):
    HALL = "hall"
    CATEGORY = "category"
    WINDOW = "window"


@dataclass
class StatsRow:
    day: dt.date
    hall_id: int
    category_id: int | None
    window_id: int | None
    issued: int | None  # None by window: numbers are taken per category, not per window
    served: int
    no_shows: int
    wait_mean_seconds: float | None
    wait_p90_seconds: float | None
    service_mean_seconds: float | None
    service_p90_seconds: float | None
    hall_name: str = ""
    category_name: str | None = None
    category_prefix: str | None = None
    window_number: int | None = None


def _seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)  # type: ignore[return-value]
    # SQLite keeps UTC timestamps as ISO text; julianday() reads them as days.
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0  # type: ignore[no-any-return]


def _durations(dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Per-ticket wait and service seconds; NULL where the ticket has none."""
    wait = case(
        (
            Ticket.called_at.is_not(None),
            _seconds_between(Ticket.called_at, Ticket.taken_at, dialect),
        ),
        else_=None,
    )
    service = case(
        (
            Ticket.status == TicketStatus.DONE,
            func.coalesce(
                cast(Ticket.service_seconds, Float),
                _seconds_between(Ticket.finished_at, Ticket.serving_started_at, dialect),
            ),
        ),
        else_=None,
    )
    return wait, service


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear-interpolated percentile, as PostgreSQL's percentile_cont computes it."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def check_range(start: dt.date, end: dt.date, max_days: int) -> None:
    if end < start or (end - start).days + 1 > max_days:
        raise StatsRangeInvalid(max_days=max_days)


def compute(
    session: Session,
    hall_id: int,
    *,
    start: dt.date,
    end: dt.date,
    group_by: GroupBy,
    max_days: int = 31,
) -> list[StatsRow]:
    """The hall's statistics for local days start..end (inclusive), one row per day and group."""
    check_range(start, end, max_days)
    dialect = session.get_bind().dialect.name
    wait, service = _durations(dialect)
    group_column = {
        GroupBy.HALL: None,
        GroupBy.CATEGORY: Ticket.category_id,
        GroupBy.WINDOW: Ticket.window_id,
    }[group_by]
    keys: list[Any] = [Ticket.service_day] + ([group_column] if group_column is not None else [])
    in_range = and_(
        Ticket.hall_id == hall_id, Ticket.service_day >= start, Ticket.service_day <= end
    )
    if group_by is GroupBy.WINDOW:
        in_range = and_(in_range, Ticket.window_id.is_not(None))
    columns: list[Any] = [
        *keys,
        func.count().label("issued"),
        func.sum(case((Ticket.status == TicketStatus.DONE, 1), else_=0)).label("served"),
        func.sum(case((Ticket.status == TicketStatus.NO_SHOW, 1), else_=0)).label("no_shows"),
        func.avg(wait).label("wait_mean"),
        func.avg(service).label("service_mean"),
    ]
    if dialect == "postgresql":
        columns += [
            func.percentile_cont(0.9).within_group(wait).label("wait_p90"),
            func.percentile_cont(0.9).within_group(service).label("service_p90"),
        ]
    result = session.execute(select(*columns).where(in_range).group_by(*keys).order_by(*keys))

    def key_of(row: Any) -> tuple[Any, ...]:
        return (row[0], row[1]) if group_column is not None else (row[0], None)

    rows: dict[tuple[Any, ...], StatsRow] = {}
    for row in result:
        day, group = key_of(row)
        rows[(day, group)] = StatsRow(
            day=day,
            hall_id=hall_id,
            category_id=group if group_by is GroupBy.CATEGORY else None,
            window_id=group if group_by is GroupBy.WINDOW else None,
            issued=int(row.issued) if group_by is not GroupBy.WINDOW else None,
            served=int(row.served or 0),
            no_shows=int(row.no_shows or 0),
            wait_mean_seconds=_round(row.wait_mean),
            wait_p90_seconds=_round(row.wait_p90) if dialect == "postgresql" else None,
            service_mean_seconds=_round(row.service_mean),
            service_p90_seconds=_round(row.service_p90) if dialect == "postgresql" else None,
        )
    if group_by is GroupBy.CATEGORY:
        _count_issued_by_issuing_category(session, hall_id, rows, in_range)
    if dialect != "postgresql":
        _python_p90(session, rows, keys, in_range, wait, service, group_column is not None)
    ordered = [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or 0))]
    _attach_names(session, hall_id, ordered)
    return ordered


def _count_issued_by_issuing_category(
    session: Session,
    hall_id: int,
    rows: dict[tuple[Any, ...], StatsRow],
    in_range: ColumnElement[bool],
) -> None:
    # A transferred ticket is served in its new category but was issued by the old one.
    for day, category_id, issued in session.execute(
        select(Ticket.service_day, Ticket.issued_category_id, func.count())
        .where(in_range)
        .group_by(Ticket.service_day, Ticket.issued_category_id)
    ):
        row = rows.get((day, category_id))
        if row is None:
            row = rows[(day, category_id)] = StatsRow(
                day=day,
                hall_id=hall_id,
                category_id=category_id,
                window_id=None,
                issued=0,
                served=0,
                no_shows=0,
                wait_mean_seconds=None,
                wait_p90_seconds=None,
                service_mean_seconds=None,
                service_p90_seconds=None,
            )
        row.issued = int(issued)


def _python_p90(
    session: Session,
    rows: dict[tuple[Any, ...], StatsRow],
    keys: list[Any],
    in_range: ColumnElement[bool],
    wait: ColumnElement[Any],
    service: ColumnElement[Any],
    grouped: bool,
) -> None:
    waits: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    services: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    durations = select(*keys, wait, service).where(
        in_range, (Ticket.called_at.is_not(None)) | (Ticket.status == TicketStatus.DONE)
    )
    for duration in session.execute(durations):
        key = (duration[0], duration[1]) if grouped else (duration[0], None)
        if duration[-2] is not None:
            waits[key].append(float(duration[-2]))
        if duration[-1] is not None:
            services[key].append(float(duration[-1]))
    for key, row in rows.items():
        row.wait_p90_seconds = _round(percentile(waits.get(key, []), 0.9))
        row.service_p90_seconds = _round(percentile(services.get(key, []), 0.9))


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _attach_names(session: Session, hall_id: int, rows: Iterable[StatsRow]) -> None:
    hall = session.get(Hall, hall_id)
    categories = {
        c.id: c
        for c in session.scalars(select(ServiceCategory).where(ServiceCategory.hall_id == hall_id))
    }
    windows = {w.id: w for w in session.scalars(select(Window).where(Window.hall_id == hall_id))}
    for row in rows:
        row.hall_name = hall.name if hall else ""
        if row.category_id is not None and row.category_id in categories:
            row.category_name = categories[row.category_id].name
            row.category_prefix = categories[row.category_id].prefix
        if row.window_id is not None and row.window_id in windows:
            row.window_number = windows[row.window_id].number


# --- CSV export --------------------------------------------------------------------------------

CSV_HEADER = (
    "日期",
    "大厅",
    "业务类别",
    "窗口",
    "取号数",
    "办结数",
    "过号数",
    "平均等候(分钟)",
    "P90等候(分钟)",
    "平均办理(分钟)",
    "P90办理(分钟)",
)


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: Iterable[StatsRow]) -> str:
    """The rows as CSV for spreadsheets: Chinese header, minutes with one decimal."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        category = (
            f"{row.category_prefix} {row.category_name}" if row.category_name is not None else ""
        )
        window = f"{row.window_number}号窗口" if row.window_number is not None else ""
        writer.writerow(
            [
                row.day.isoformat(),
                _cell(row.hall_name),
                _cell(category),
                window,
                "" if row.issued is None else row.issued,
                row.served,
                row.no_shows,
                _minutes(row.wait_mean_seconds),
                _minutes(row.wait_p90_seconds),
                _minutes(row.service_mean_seconds),
                _minutes(row.service_p90_seconds),
            ]
        )
    return buffer.getvalue()


STATS_FIELDS = [f.name for f in fields(StatsRow)]

"""Queue statistics: counts, mean and p90 times per day and category/window; CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.halls.models import ServiceCategory
from app.identity.models import StaffRole
from app.queue_stats import service
from app.queue_stats.service import GroupBy, StatsRangeInvalid, percentile
from app.queueing.models import Ticket, TicketStatus
from tests.factories.appointments import HallSetup, local

DAY = dt.date(2026, 11, 4)
WAITS = [60, 120, 180, 240, 300, 360, 420, 480, 540, 600]  # ten A tickets, all done at window 1
SERVICES = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


@pytest.fixture
def day_of_tickets(
    appointment_hall: Callable[..., HallSetup], create_ticket_row: Callable[..., Ticket]
) -> HallSetup:
    """Category A: 10 done at window 1 and 2 no-shows; B: 3 done at window 2, 1 waiting,
    and 1 A ticket transferred to B and served there. Plus one A ticket the day before."""
    hall = appointment_hall()
    a, b = hall.categories
    w1, w2 = hall.windows
    opening = local(2026, 11, 4, 9, 0)
    for i, (wait, served) in enumerate(zip(WAITS, SERVICES, strict=True)):
        create_ticket_row(
            a,
            opening + dt.timedelta(minutes=i),
            status=TicketStatus.DONE,
            window=w1,
            wait_seconds=wait,
            service_seconds=served,
        )
    for i in range(2):
        create_ticket_row(
            a,
            opening + dt.timedelta(minutes=20 + i),
            status=TicketStatus.NO_SHOW,
            window=w1,
            wait_seconds=900,
        )
    for i in range(3):
        create_ticket_row(
            b,
            opening + dt.timedelta(minutes=i),
            status=TicketStatus.DONE,
            window=w2,
            wait_seconds=600,
            service_seconds=1200,
        )
    create_ticket_row(b, opening + dt.timedelta(hours=2))
    transferred = create_ticket_row(
        a,
        opening + dt.timedelta(minutes=30),
        status=TicketStatus.DONE,
        window=w2,
        wait_seconds=300,
        service_seconds=900,
    )
    transferred.category_id = b.id  # issued by A, served in B
    create_ticket_row(
        a,
        local(2026, 11, 3, 10),
        status=TicketStatus.DONE,
        window=w1,
        wait_seconds=60,
        service_seconds=60,
    )
    return hall


def _by_category(rows: list[service.StatsRow], category: ServiceCategory) -> service.StatsRow:
    return next(r for r in rows if r.category_id == category.id)


def test_statistics_per_category_count_and_time_the_day(
    session: Session, day_of_tickets: HallSetup
) -> None:
    a, b = day_of_tickets.categories

    rows = service.compute(
        session, day_of_tickets.id, start=DAY, end=DAY, group_by=GroupBy.CATEGORY
    )

    assert {r.day for r in rows} == {DAY}
    row_a, row_b = _by_category(rows, a), _by_category(rows, b)
    assert (row_a.issued, row_a.served, row_a.no_shows) == (13, 10, 2)
    assert (row_b.issued, row_b.served, row_b.no_shows) == (4, 4, 0)
    # A: waits of the 10 done and the 2 no-shows (called, never served).
    assert row_a.wait_mean_seconds == pytest.approx((sum(WAITS) + 2 * 900) / 12, abs=0.1)
    assert row_a.wait_p90_seconds == pytest.approx(percentile([*WAITS, 900, 900], 0.9), abs=0.1)
    assert row_a.service_mean_seconds == pytest.approx(550.0)
    assert row_a.service_p90_seconds == pytest.approx(910.0)  # 900 + 0.1 * (1000 - 900)
    assert row_b.service_mean_seconds == pytest.approx((3 * 1200 + 900) / 4)
    assert row_a.category_name == "综合业务" and row_a.category_prefix == "A"


def test_statistics_per_window_and_per_hall(session: Session, day_of_tickets: HallSetup) -> None:
    w1, w2 = day_of_tickets.windows

    by_window = service.compute(
        session, day_of_tickets.id, start=DAY, end=DAY, group_by=GroupBy.WINDOW
    )
    by_hall = service.compute(
        session, day_of_tickets.id, start=dt.date(2026, 11, 3), end=DAY, group_by=GroupBy.HALL
    )

    one = next(r for r in by_window if r.window_id == w1.id)
    two = next(r for r in by_window if r.window_id == w2.id)
    assert (one.issued, one.served, one.no_shows, one.window_number) == (None, 10, 2, 1)
    assert (two.served, two.service_p90_seconds) == (4, pytest.approx(1200.0))
    assert [(r.day, r.issued, r.served) for r in by_hall] == [
        (dt.date(2026, 11, 3), 1, 1),
        (DAY, 17, 14),
    ]


def test_percentile_interpolates_like_postgresql() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9) == pytest.approx(
        9.1
    )


def test_a_range_too_long_or_reversed_is_refused(
    session: Session, day_of_tickets: HallSetup
) -> None:
    with pytest.raises(StatsRangeInvalid):
        service.compute(
            session,
            day_of_tickets.id,
            start=DAY,
            end=DAY + dt.timedelta(days=31),
            group_by=GroupBy.HALL,
        )
    with pytest.raises(StatsRangeInvalid):
        service.compute(
            session,
            day_of_tickets.id,
            start=DAY,
            end=DAY - dt.timedelta(days=1),
            group_by=GroupBy.HALL,
        )


def test_the_csv_export_has_the_same_figures_in_minutes(
    client: FlaskClient,
    day_of_tickets: HallSetup,
    create_staff: Callable[..., object],
    staff_headers: Callable[[object], dict[str, str]],
) -> None:
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, day_of_tickets.id, None)])

    response = client.get(
        f"/api/v1/halls/{day_of_tickets.id}/queue-stats.csv?from=2026-11-04&by=category",
        headers=staff_headers(manager),
    )

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "queue-stats-" in response.headers["Content-Disposition"]
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == list(service.CSV_HEADER)
    hall_name = day_of_tickets.hall.name
    assert rows[1] == [
        "2026-11-04",
        hall_name,
        "A 综合业务",
        "",
        "13",
        "10",
        "2",
        "7.1",  # (3300 + 2 * 900) / 12 s
        "14.5",  # 600 + 0.9 * (900 - 600) s
        "9.2",
        "15.2",
    ]
    assert rows[2][:7] == ["2026-11-04", hall_name, "B 不动产登记", "", "4", "4", "0"]
    assert len(rows) == 3


def test_json_statistics_are_scoped_to_the_managers_hall(
    client: FlaskClient,
    day_of_tickets: HallSetup,
    appointment_hall: Callable[..., HallSetup],
    create_staff: Callable[..., object],
    staff_headers: Callable[[object], dict[str, str]],
) -> None:
    manager = create_staff(grants=[(StaffRole.HALL_MANAGER, day_of_tickets.id, None)])
    outsider = create_staff(grants=[(StaffRole.HALL_MANAGER, appointment_hall().id, None)])
    clerk = create_staff(grants=[(StaffRole.WINDOW_CLERK, day_of_tickets.id, None)])
    path = f"/api/v1/halls/{day_of_tickets.id}/queue-stats?from=2026-11-04&by=window"

    ok = client.get(path, headers=staff_headers(manager))

    assert ok.status_code == 200
    assert ok.json["by"] == "window" and ok.json["from"] == "2026-11-04"
    assert sorted(r["window_number"] for r in ok.json["rows"]) == [1, 2]
    assert client.get(path, headers=staff_headers(outsider)).status_code == 403
    assert client.get(path, headers=staff_headers(clerk)).status_code == 403
    too_long = client.get(
        f"/api/v1/halls/{day_of_tickets.id}/queue-stats?from=2026-01-01&to=2026-11-04",
        headers=staff_headers(manager),
    )
    assert too_long.status_code == 422 and too_long.json["code"] == "STATS_RANGE_INVALID"


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    row = service.StatsRow(
        day=DAY,
        hall_id=1,
        category_id=1,
        window_id=None,
        issued=1,
        served=1,
        no_shows=0,
        wait_mean_seconds=None,
        wait_p90_seconds=None,
        service_mean_seconds=None,
        service_p90_seconds=None,
        hall_name='=HYPERLINK("x")',
        category_name="综合",
        category_prefix="A",
    )
    text = service.to_csv([row])
    assert "'=HYPERLINK" in text

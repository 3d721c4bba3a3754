"""The district's working-day calendar: holidays and make-up workdays, the override table for
a year the library does not know, and deadlines that stop while waiting for the applicant."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from app import calendar


def local(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=calendar.LOCAL_TZ)


def test_a_deadline_skips_the_national_day_holidays_and_counts_the_make_up_saturday() -> None:
    start = local(2026, 9, 29, 10, 0)  # Tuesday; 1-7 October off, Saturday 10 October worked

    assert calendar.deadline(start, 3) == local(2026, 10, 10)  # 30 Sep, 8 Oct, 9 Oct
    assert calendar.deadline(start, 5) == local(2026, 10, 13)  # then Sat 10 Oct and 12 Oct
    assert calendar.deadline(start, 0) == start  # decided at once
    assert calendar.working_days_between(dt.date(2026, 9, 28), dt.date(2026, 10, 11)) == 6


def test_the_clock_stops_while_the_case_waits_for_the_applicant() -> None:
    start = local(2026, 9, 29, 10, 0)
    supplement = (local(2026, 9, 30, 9, 0), local(2026, 10, 8, 15, 0))  # 补正 and resubmitted

    assert calendar.deadline(start, 3, [supplement]) == local(2026, 10, 13)
    # While the request for material is open there is no deadline to run out.
    assert calendar.deadline(start, 3, [(local(2026, 9, 30, 9, 0), None)]) is None


def test_the_override_table_sets_a_year_the_library_does_not_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monday = dt.date(2027, 1, 4)
    assert calendar.unknown_years([2027]) == [2027]  # the pinned release stops at 2026
    assert calendar.day_kind(monday) == "workday"
    table = tmp_path / "overrides.json"
    table.write_text(
        json.dumps({"days": {"2027-01-01": "holiday", "2027-01-04": "holiday"}}), encoding="utf-8"
    )
    monkeypatch.setattr(calendar, "OVERRIDES_FILE", table)

    assert calendar.day_kind(monday) == "holiday"
    assert not calendar.is_working_day(monday)
    assert calendar.unknown_years([2027]) == []


def test_the_shipped_override_table_is_well_formed() -> None:
    assert all(kind in calendar.DAY_KINDS for kind in calendar.overrides().values())


def test_a_bad_override_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "overrides.json"
    table.write_text(json.dumps({"days": {"2027-01-01": "festival"}}), encoding="utf-8")
    with pytest.raises(ValueError, match="festival"):
        calendar.load_overrides(table)


def test_years_unknown_to_the_library_and_the_table_are_reported() -> None:
    assert calendar.unknown_years([2026]) == []
    assert calendar.unknown_years([2099]) == [2099]


def test_a_year_without_its_published_schedule_still_keeps_the_statutory_holidays() -> None:
    # The pinned release stops at 2026 and no 2027 schedule is entered yet: New Year's Day 2027,
    # a Friday, was an ordinary working day, offered for appointments from 22 December (seven
    # working days ahead) and counted in every deadline across the new year, and so were the
    # Spring Festival's weekdays. The law fixes those days whatever the State Council's notice
    # adds (its days in lieu and make-up workdays stay unknown until it is entered).
    assert calendar.unknown_years([2027]) == [2027]
    law = [
        dt.date(2027, 1, 1),  # 元旦, Friday
        dt.date(2027, 2, 5),  # 除夕, Friday
        dt.date(2027, 2, 8),  # 正月初三, Monday
        dt.date(2027, 4, 5),  # 清明, Monday
        dt.date(2027, 6, 9),  # 端午, Wednesday
        dt.date(2027, 9, 15),  # 中秋, Wednesday
        dt.date(2027, 10, 1),  # 国庆, Friday
    ]
    assert [calendar.day_kind(day) for day in law] == ["holiday"] * len(law)
    assert calendar.deadline(local(2026, 12, 31, 10, 0), 1) == local(2027, 1, 5)
    assert calendar.day_kind(dt.date(2027, 1, 4)) == "workday"
    assert calendar.unknown_years([2027]) == [2027]  # still reported: the notice is missing


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_statutory_holidays_are_holidays_in_every_schedule_under_the_2025_rules(
    year: int,
) -> None:
    # 全国年节及纪念日放假办法 as revised in 2024: 13 days a year from 2025 on. Checked against the
    # schedules the library has, which were published for those years.
    days = calendar.statutory_holidays(year)
    assert len(days) == 13
    assert {calendar.day_kind(day) for day in days} == {"holiday"}


def test_years_the_statutory_rules_do_not_cover_are_plain_weekdays_and_weekends() -> None:
    # Before 2025 the law gave other days (the library knows those years); after 2100 the
    # solar-term tables end. Neither may fail a request that names such a day.
    assert calendar.statutory_holidays(2024) == frozenset()
    assert calendar.statutory_holidays(2101) == frozenset()
    assert calendar.day_kind(dt.date(9999, 1, 1)) == "workday"
    assert calendar.day_kind(dt.date(1, 1, 6)) == "weekend"

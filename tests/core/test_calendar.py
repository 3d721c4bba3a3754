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

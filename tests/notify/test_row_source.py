"""RowSource: a batch statement's row values, bound per row or read from one jsonb parameter."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Integer

from app.db import UTCDateTime
from app.notify.models import NotificationOutbox
from app.notify.sql import RowSource

TYPES = {"n_id": Integer(), "n_at": UTCDateTime(), "n_data": NotificationOutbox.data.type}
SHANGHAI = dt.datetime(2024, 5, 1, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_on_postgresql_each_value_follows_its_column_types_bind_rule_then_goes_as_json():
    rows = RowSource("postgresql", TYPES).params(
        [{"n_id": 7, "n_at": SHANGHAI, "n_data": {"thing1": "办结"}, "extra": "ignored"}]
    )
    # UTCDateTime's own rule turned the Shanghai time into UTC before it was written out.
    assert rows == {
        "rows": [{"n_id": 7, "n_at": "2024-05-01T02:30:00+00:00", "n_data": {"thing1": "办结"}}]
    }


def test_on_postgresql_a_naive_time_is_refused_as_utcdatetime_refuses_it():
    with pytest.raises(ValueError, match="naive"):
        RowSource("postgresql", TYPES).params(
            [{"n_id": 7, "n_at": dt.datetime(2024, 5, 1, 10, 30), "n_data": {}}]
        )


def test_elsewhere_the_rows_are_the_executemany_parameters_as_given():
    given = [{"n_id": 7, "n_at": SHANGHAI, "n_data": {}}]
    assert RowSource("sqlite", TYPES).params(given) is given

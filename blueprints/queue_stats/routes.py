"""Queue statistics of a hall for its managers: JSON and CSV export."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from app.calendar import local_day
from app.db import get_session, utcnow
from app.queue_stats import service
from app.queue_stats.service import GroupBy, StatsRow
from blueprints.authz import require_scope, staff_required
from blueprints.openapi import Blueprint
from blueprints.queue_stats.schemas import QueueStatsOut, QueueStatsQuery

blp = Blueprint("queue_stats", __name__, url_prefix="", description="排队统计")

MANAGERS = ("hall_manager",)


def _compute(query: dict[str, Any], hall_id: int) -> tuple[dt.date, dt.date, list[StatsRow]]:
    require_scope(MANAGERS, hall_id)
    start = query.get("start") or local_day(utcnow())
    end = query.get("end") or start
    rows = service.compute(
        get_session(),
        hall_id,
        start=start,
        end=end,
        group_by=query["by"],
        max_days=current_app.config["QUEUE_STATS_MAX_DAYS"],
    )
    return start, end, rows


@blp.route("/halls/<int:hall_id>/queue-stats")
class HallQueueStats(MethodView):
    @blp.arguments(QueueStatsQuery, location="query")
    @blp.response(200, QueueStatsOut)
    @blp.alt_response(422, description="STATS_RANGE_INVALID：日期范围有误或过长")
    @staff_required(*MANAGERS)
    def get(self, query: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """Per day and category (or window, or the whole hall): issued, served, no-shows,
        mean and p90 of wait and service seconds."""
        start, end, rows = _compute(query, hall_id)
        return {"hall_id": hall_id, "start": start, "end": end, "by": query["by"], "rows": rows}


@blp.route("/halls/<int:hall_id>/queue-stats.csv")
class HallQueueStatsCsv(MethodView):
    @blp.arguments(QueueStatsQuery, location="query")
    @blp.alt_response(
        200,
        description="CSV（UTF-8 带 BOM，时间单位：分钟）",
        content_type="text/csv",
        success=True,
    )
    @blp.alt_response(422, description="STATS_RANGE_INVALID：日期范围有误或过长")
    @staff_required(*MANAGERS)
    def get(self, query: dict[str, Any], hall_id: int) -> Response:
        """The same statistics as a CSV file for spreadsheets."""
        start, end, rows = _compute(query, hall_id)
        by: GroupBy = query["by"]
        filename = f"queue-stats-{hall_id}-{start:%Y%m%d}-{end:%Y%m%d}-{by.value}.csv"
        # The BOM makes spreadsheet programs read the Chinese header as UTF-8.
        return Response(
            "\ufeff" + service.to_csv(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

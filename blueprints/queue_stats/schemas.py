"""Query and answer of the queue statistics endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.queue_stats.service import GroupBy
from blueprints.fields import CalendarDate

# Dates a query may name: anything else is a typo or a probe, refused with 422.


class QueueStatsQuery(Schema):
    start = CalendarDate(data_key="from", metadata={"description": "开始日期（含），缺省为今天"})
    end = CalendarDate(
        data_key="to",
        metadata={"description": "结束日期（含），缺省同开始日期"},
    )
    by = fields.Enum(
        GroupBy,
        by_value=True,
        load_default=GroupBy.CATEGORY,
        metadata={
            "description": "按 hall（大厅）、category（业务类别）或 window（窗口）分组，均按日"
        },
    )


class QueueStatsRowOut(Schema):
    day = fields.Date()
    hall_id = fields.Integer()
    hall_name = fields.String()
    category_id = fields.Integer(allow_none=True)
    category_name = fields.String(allow_none=True)
    category_prefix = fields.String(allow_none=True)
    window_id = fields.Integer(allow_none=True)
    window_number = fields.Integer(allow_none=True)
    issued = fields.Integer(
        allow_none=True, metadata={"description": "取号数（按窗口分组时为空：号码按类别发放）"}
    )
    served = fields.Integer(metadata={"description": "办结数"})
    no_shows = fields.Integer(metadata={"description": "过号未到数"})
    wait_mean_seconds = fields.Float(allow_none=True, metadata={"description": "平均等候秒数"})
    wait_p90_seconds = fields.Float(allow_none=True, metadata={"description": "90% 分位等候秒数"})
    service_mean_seconds = fields.Float(allow_none=True, metadata={"description": "平均办理秒数"})
    service_p90_seconds = fields.Float(
        allow_none=True, metadata={"description": "90% 分位办理秒数"}
    )


class QueueStatsOut(Schema):
    hall_id = fields.Integer()
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    by = fields.Enum(GroupBy, by_value=True)
    rows = fields.List(fields.Nested(QueueStatsRowOut))

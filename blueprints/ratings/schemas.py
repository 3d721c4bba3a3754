"""Bodies and answers of rating (好差评) and follow-up endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.ratings.models import FollowUpStatus, RatingLevel
from blueprints.fields import BeijingTime, CalendarDate
from blueprints.pagination import PageArgs

LEVELS = ", ".join(f"{level.value}（{level.label}）" for level in RatingLevel)


# Dates a query may name: anything else is a typo or a probe, refused with 422.


class RateIn(Schema):
    level = fields.Enum(
        RatingLevel, by_value=True, required=True, metadata={"description": "评价等级：" + LEVELS}
    )
    # The configured maximum is checked by the service (COMMENT_TOO_LONG); this is a hard cap.
    comment = fields.String(
        allow_none=True,
        validate=validate.Length(max=2000),
        metadata={"description": "评价内容（可选），原样保存"},
    )


class RatingOut(Schema):
    id = fields.Integer()
    ticket_id = fields.Integer(allow_none=True, metadata={"description": "评价的取号（窗口服务）"})
    application_id = fields.Integer(allow_none=True, metadata={"description": "评价的办件"})
    hall_id = fields.Integer(allow_none=True)
    category_id = fields.Integer(allow_none=True)
    window_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True, metadata={"description": "办件的审批部门"})
    level = fields.Enum(RatingLevel, by_value=True)
    level_label = fields.String(attribute="level.label", metadata={"description": "如 非常满意"})
    score = fields.Integer(metadata={"description": "5 非常满意 … 1 非常不满意"})
    comment = fields.String(allow_none=True)
    rated_at = BeijingTime()
    follow_up_due_at = BeijingTime(
        attribute="follow_up.due_at", allow_none=True, metadata={"description": "差评整改期限"}
    )


class FollowUpQuery(PageArgs):
    status = fields.Enum(FollowUpStatus, by_value=True)
    overdue = fields.Boolean(load_default=False, metadata={"description": "只看已超期未整改的"})


class FollowUpOut(Schema):
    id = fields.Integer()
    hall_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    status = fields.Enum(FollowUpStatus, by_value=True)
    due_at = BeijingTime()
    overdue = fields.Boolean(metadata={"description": "未整改且已过期限"})
    rating = fields.Nested(RatingOut)
    rectification = fields.String(allow_none=True, metadata={"description": "整改情况"})
    closed_at = BeijingTime(allow_none=True)
    closed_by = fields.Integer(allow_none=True)
    created_at = BeijingTime()


class CloseFollowUpIn(Schema):
    rectification = fields.String(
        required=True,
        validate=validate.Length(min=5, max=2000),
        metadata={"description": "整改措施及结果"},
    )


class RatingSummaryQuery(Schema):
    start = CalendarDate(
        data_key="from",
        metadata={"description": "开始日期（含），缺省为 30 天前"},
    )
    end = CalendarDate(data_key="to", metadata={"description": "结束日期（含），缺省为今天"})


class RatingSummaryOut(Schema):
    hall_id = fields.Integer()
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    total = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    satisfaction_rate = fields.Float(
        allow_none=True, metadata={"description": "满意率：基本满意及以上所占比例"}
    )

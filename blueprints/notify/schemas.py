"""Bodies of the citizen's subscription reports and notification list."""

from __future__ import annotations

from typing import Any

from flask import Flask
from marshmallow import Schema, fields, validate

from app.notify.models import OutboxStatus, SubscriptionResult
from app.notify.templates import TemplateCatalog
from blueprints.fields import BeijingTime

RESULTS = [result.value for result in SubscriptionResult]


def _results_property(app: Flask) -> dict[str, Any]:
    """The report as this deployment's template ids allow it (WECHAT_TEMPLATES)."""
    catalog: TemplateCatalog = app.extensions["notify_templates"]
    ids = sorted(template.id for template in catalog)
    return {
        "type": "object",
        "description": "wx.requestSubscribeMessage 的结果：模板 ID → accept/reject/ban/filter",
        "properties": {template_id: {"type": "string", "enum": RESULTS} for template_id in ids},
        "additionalProperties": False,
        "minProperties": 1,
        "example": {template_id: "accept" for template_id in ids[:2]},
    }


class SubscriptionReportIn(Schema):
    results = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=128)),
        values=fields.String(validate=validate.OneOf(RESULTS)),
        required=True,
        validate=validate.Length(min=1, max=20),
        # The keys are the deployment's template ids (an unknown one is UNKNOWN_TEMPLATE).
        metadata={"openapi_property": _results_property},
    )


class SubscriptionOut(Schema):
    template_key = fields.String(
        attribute="template.key", metadata={"description": "通知类型，如 queue_called"}
    )
    template_id = fields.String(attribute="template.id", metadata={"description": "微信模板 ID"})
    title = fields.String(attribute="template.title", metadata={"description": "模板标题"})
    long_term_template = fields.Boolean(
        attribute="template.long_term", metadata={"description": "是否长期订阅模板"}
    )
    one_time_remaining = fields.Integer(metadata={"description": "剩余一次性订阅次数"})
    long_term = fields.Boolean(metadata={"description": "已开启长期订阅"})
    can_send = fields.Boolean(metadata={"description": "当前能否向该用户发送此类通知"})
    last_result = fields.Enum(
        SubscriptionResult,
        by_value=True,
        allow_none=True,
        metadata={"description": "最近一次授权结果"},
    )
    updated_at = BeijingTime(allow_none=True)


class NotificationOut(Schema):
    id = fields.Integer()
    template_key = fields.String(metadata={"description": "通知类型，如 queue_called"})
    data = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "消息字段的值"}
    )
    page = fields.String(allow_none=True, metadata={"description": "点击消息打开的小程序页面"})
    status = fields.Enum(
        OutboxStatus,
        by_value=True,
        metadata={
            "description": (
                "pending/sending 待发送，sent 已发送，skipped 未授权未发送，failed 发送失败"
            )
        },
    )
    reason = fields.String(
        attribute="last_error_code",
        allow_none=True,
        metadata={"description": "未发送或失败的原因代码"},
    )
    created_at = BeijingTime()
    sent_at = BeijingTime(allow_none=True)

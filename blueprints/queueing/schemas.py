"""Bodies of the queue API: citizen, window terminal and hall screen."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.queueing.models import TicketSource, TicketStatus
from blueprints.fields import BeijingTime

TOKEN = validate.Length(min=4, max=64)


class ScanIn(Schema):
    code = fields.String(required=True, validate=TOKEN, metadata={"description": "大厅二维码内容"})
    latitude = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(-90, 90),
        metadata={"description": "手机定位纬度（扫打印码时必填）"},
    )
    longitude = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(-180, 180),
        metadata={"description": "手机定位经度（扫打印码时必填）"},
    )


class TakeIn(ScanIn):
    category_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))


class ScanCategoryOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    daily_cap = fields.Integer()
    typical_minutes = fields.Float()
    matters = fields.List(fields.String())
    waiting = fields.Integer(metadata={"description": "当前等候人数"})


class ScanOut(Schema):
    hall_id = fields.Integer()
    hall_name = fields.String()
    open = fields.Boolean()
    categories = fields.List(fields.Nested(ScanCategoryOut))


class TicketOut(Schema):
    id = fields.Integer()
    display = fields.String(metadata={"description": "号码，如 A012"})
    hall_id = fields.Integer()
    hall_name = fields.String(allow_none=True)
    category_id = fields.Integer()
    category_name = fields.String(allow_none=True)
    service_day = fields.Date()
    status = fields.Enum(TicketStatus, by_value=True)
    source = fields.Enum(TicketSource, by_value=True)
    priority = fields.Integer(metadata={"description": "0 普通，1 绿色通道，2 预约"})
    green_reason = fields.String(allow_none=True)
    taken_at = BeijingTime()
    called_at = BeijingTime(allow_none=True)
    window_number = fields.Integer(allow_none=True)
    window_name = fields.String(allow_none=True, metadata={"description": "如“3号窗口”"})
    recall_count = fields.Integer()
    version = fields.Integer(metadata={"description": "乐观锁版本，终端操作可带上以防重复点击"})
    ahead = fields.Integer(allow_none=True, metadata={"description": "前方等候人数"})
    estimated_wait_minutes = fields.Integer(
        allow_none=True, metadata={"description": "预计等候分钟数；无开放窗口时为空"}
    )


class PersonalCodeOut(Schema):
    code = fields.String(metadata={"description": "个人码内容，60 秒内有效"})
    expires_at = BeijingTime()
    svg = fields.String(metadata={"description": "二维码 SVG"})


class PersonalScanIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=4, max=256),
        metadata={"description": "扫描到的禺好办个人码或红棉码"},
    )


class TerminalTakeIn(PersonalScanIn):
    category_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))


class CitizenCardOut(Schema):
    user_id = fields.Integer(
        allow_none=True, metadata={"description": "禺好办账号；红棉码且未在本系统实名登记时为空"}
    )
    via = fields.String(
        validate=validate.OneOf(["personal_code", "city_code"]),
        metadata={"description": "personal_code：禺好办个人码；city_code：红棉码"},
    )
    name = fields.String(allow_none=True, metadata={"description": "脱敏姓名"})
    id_number = fields.String(allow_none=True, metadata={"description": "脱敏证件号"})
    green_reason = fields.String(allow_none=True)
    tickets = fields.List(fields.Nested(TicketOut))


class WindowStatusIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["open", "paused", "closed"]))


class ActionIn(Schema):
    version = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=2**31),
        metadata={"description": "客户端看到的号码版本；不符则 409"},
    )


class CallNumberIn(Schema):
    ticket_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))


class FinishIn(ActionIn):
    matter = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=128),
        metadata={"description": "办理的事项"},
    )


class TransferIn(ActionIn):
    category_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**53)
    )
    window_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**53)
    )


class BoardWindowOut(Schema):
    number = fields.Integer()
    label = fields.String(allow_none=True)
    name = fields.String(metadata={"description": "窗口称呼：标签，或“3号窗口”"})
    status = fields.String()
    current = fields.String(allow_none=True)
    current_status = fields.String(allow_none=True)


class BoardCategoryOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    waiting = fields.Integer()


class BoardCallOut(Schema):
    display = fields.String()
    window = fields.Integer()
    window_name = fields.String()
    text = fields.String(metadata={"description": "播报文本"})
    at = BeijingTime()


class BoardOut(Schema):
    hall_id = fields.Integer()
    hall_name = fields.String()
    service_day = fields.Date()
    open = fields.Boolean()
    windows = fields.List(fields.Nested(BoardWindowOut))
    categories = fields.List(fields.Nested(BoardCategoryOut))
    recent_calls = fields.List(
        fields.Nested(BoardCallOut), metadata={"description": "最近的叫号，新的在前"}
    )
    generated_at = BeijingTime()


class DynamicCodeOut(Schema):
    code = fields.String()
    next_at = BeijingTime(metadata={"description": "下一次换码时间"})
    period_seconds = fields.Integer()
    svg = fields.String()


class HallCodeIn(Schema):
    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))


class HallCodeOut(Schema):
    id = fields.Integer()
    hall_id = fields.Integer()
    key_id = fields.String()
    label = fields.String(allow_none=True)
    token = fields.String(allow_none=True)
    created_at = BeijingTime()
    revoked_at = BeijingTime(allow_none=True)


class HallDisplayIn(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "屏幕位置，如“一楼入口屏”"},
    )


class HallDisplayOut(Schema):
    id = fields.Integer()
    hall_id = fields.Integer()
    name = fields.String()
    created_at = BeijingTime()
    last_used_at = BeijingTime(
        allow_none=True, metadata={"description": "最近一次使用（约5分钟精度）"}
    )
    revoked_at = BeijingTime(allow_none=True)


class HallDisplayIssuedOut(HallDisplayOut):
    token = fields.String(
        metadata={"description": "屏幕令牌，只在登记时返回一次：Authorization: Display <token>"}
    )


class GreenChannelIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=4, max=256),
        metadata={"description": "市民的禺好办个人码或红棉码"},
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))

"""Bodies and answers of the appointment endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.appointments.models import AppointmentStatus
from blueprints.fields import BeijingTime, CalendarDate
from blueprints.http import MAX_ID
from blueprints.pagination import PageArgs, page_schema

# Dates a query may name: anything else is a typo or a probe, refused with 422.


class SlotQuery(PageArgs):
    category_id = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "只看该业务类别"}
    )
    day = CalendarDate(metadata={"description": "只看该日（北京时间日期）"})


class SlotOut(Schema):
    id = fields.Integer()
    hall_id = fields.Integer()
    category_id = fields.Integer()
    day = fields.Date(metadata={"description": "北京时间日期"})
    starts_at = BeijingTime()
    ends_at = BeijingTime()
    capacity = fields.Integer()
    booked = fields.Integer()
    remaining = fields.Integer(metadata={"description": "剩余可约名额"})


class SlotCapacityIn(Schema):
    capacity = fields.Integer(required=True, validate=validate.Range(min=0, max=500))


class BookIn(Schema):
    slot_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))


class AppointmentOut(Schema):
    id = fields.Integer()
    slot_id = fields.Integer()
    hall_id = fields.Integer()
    category_id = fields.Integer()
    day = fields.Date()
    starts_at = BeijingTime()
    ends_at = BeijingTime(attribute="slot.ends_at")
    status = fields.Enum(
        AppointmentStatus,
        by_value=True,
        metadata={"description": "booked 已预约，cancelled 已取消，checked_in 已签到，missed 失约"},
    )
    ticket_id = fields.Integer(allow_none=True, metadata={"description": "签到后取得的号码"})
    booked_at = BeijingTime()
    cancelled_at = BeijingTime(allow_none=True)
    checked_in_at = BeijingTime(allow_none=True)
    missed_at = BeijingTime(allow_none=True)


class AppointmentListQuery(PageArgs):
    upcoming = fields.Boolean(
        load_default=True, metadata={"description": "只看今天及以后未取消的预约"}
    )


class HallCheckInIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "扫描大厅二维码（或入口动态码）得到的内容"},
    )
    latitude = fields.Float(
        validate=validate.Range(min=-90, max=90), metadata={"description": "扫码时手机的纬度"}
    )
    longitude = fields.Float(
        validate=validate.Range(min=-180, max=180), metadata={"description": "扫码时手机的经度"}
    )


class TerminalCheckInIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "窗口终端扫描群众个人码得到的内容"},
    )
    hall_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    appointment_id = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "多个可签到预约时指定其一；缺省为最早的一个"},
    )


class CheckInTicketOut(Schema):
    id = fields.Integer()
    display = fields.String(metadata={"description": "号码，如 A012"})
    status = fields.String()
    priority = fields.Integer()
    due_at = BeijingTime(allow_none=True)
    taken_at = BeijingTime()


class CheckInOut(Schema):
    appointment = fields.Nested(AppointmentOut)
    ticket = fields.Nested(CheckInTicketOut)


class HallAppointmentsQuery(PageArgs):
    day = CalendarDate(metadata={"description": "北京时间日期，缺省为今天"})


class HallAppointmentOut(AppointmentOut):
    citizen_name = fields.String(allow_none=True, metadata={"description": "脱敏姓名"})


HallAppointmentsPage = page_schema(
    HallAppointmentOut,
    day=fields.Date(required=True),
    counts=fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "当日各状态的预约数"},
    ),
)

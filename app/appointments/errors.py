"""Refusals of appointment booking, cancelling and check-in, each with its own code."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, ValidationFailed


class SlotNotFound(NotFound):
    code = "SLOT_NOT_FOUND"
    message = "预约时段不存在"


class AppointmentNotFound(NotFound):
    code = "APPOINTMENT_NOT_FOUND"
    message = "预约记录不存在"


class SlotNotBookable(ValidationFailed):
    code = "SLOT_NOT_BOOKABLE"
    message = "该时段不在可预约范围内"


class SlotFull(Conflict):
    code = "SLOT_FULL"
    message = "该时段已约满，请选择其他时段"


class AlreadyBooked(Conflict):
    code = "ALREADY_BOOKED"
    message = "您当天已预约该类业务"


class BookingSuspended(Forbidden):
    code = "BOOKING_SUSPENDED"
    message = "您近期多次预约未到，暂停预约至解除时间"


class IdempotencyKeyReused(ValidationFailed):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "该请求标识已用于其他预约"


class AppointmentNotActive(Conflict):
    code = "APPOINTMENT_NOT_ACTIVE"
    message = "该预约已取消、已签到或已失约"


class CancelTooLate(Conflict):
    code = "CANCEL_TOO_LATE"
    message = "预约时段已开始，不能取消"


class CheckInTooEarly(Conflict):
    code = "CHECK_IN_TOO_EARLY"
    message = "未到签到时间，请在预约时段开始前30分钟内签到"


class CheckInTooLate(Conflict):
    code = "CHECK_IN_TOO_LATE"
    message = "已超过签到时间，预约已失效"


class WrongHall(Conflict):
    code = "APPOINTMENT_WRONG_HALL"
    message = "该预约不在本大厅办理"


class NoAppointmentToCheckIn(NotFound):
    code = "NO_APPOINTMENT_TO_CHECK_IN"
    message = "当前没有可签到的预约"


class CapacityBelowBooked(Conflict):
    code = "CAPACITY_BELOW_BOOKED"
    message = "容量不能小于已预约人数"

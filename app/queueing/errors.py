"""Errors of the queue: each refusal has its own code and Chinese message."""

from __future__ import annotations

from app.errors import Conflict, DomainError, NotFound, UpstreamUnavailable, ValidationFailed


class HallCodeNotFound(NotFound):
    code = "HALL_CODE_NOT_FOUND"
    message = "大厅码不存在"


class HallDisplayNotFound(NotFound):
    code = "HALL_DISPLAY_NOT_FOUND"
    message = "大厅屏不存在"


class CodeForged(ValidationFailed):
    code = "CODE_FORGED"
    message = "二维码无效，请扫描大厅现场的二维码"


class CodeExpired(ValidationFailed):
    code = "CODE_EXPIRED"
    message = "二维码已过期，请刷新后重新扫描"


class CodeRevoked(ValidationFailed):
    code = "CODE_REVOKED"
    message = "该二维码已停用，请扫描大厅现场的新二维码"


class CodeWrongHall(ValidationFailed):
    code = "CODE_WRONG_HALL"
    message = "二维码与所选办事大厅不符"


class CodeReplayed(Conflict):
    code = "CODE_REPLAYED"
    message = "该个人码已使用，请刷新后重新出示"


class LocationRequired(ValidationFailed):
    code = "LOCATION_REQUIRED"
    message = "请允许获取位置信息后再取号"


class LocationTooFar(DomainError):
    status = 403
    code = "LOCATION_TOO_FAR"
    message = "您不在办事大厅附近，请到现场后再取号"


class HallClosed(DomainError):
    status = 409
    code = "HALL_CLOSED"
    message = "办事大厅当前不在营业时间"


class CapReached(DomainError):
    status = 409
    code = "DAILY_CAP_REACHED"
    message = "该业务今日号源已取完"


class AlreadyHoldingTicket(Conflict):
    code = "ALREADY_HOLDING_TICKET"
    message = "您已持有该业务的有效号码"


class TicketNotFound(NotFound):
    code = "TICKET_NOT_FOUND"
    message = "号码不存在"


class TakeConflict(Conflict):
    code = "TAKE_CONFLICT"
    message = "取号冲突，请稍后重试"


class IllegalTransition(Conflict):
    code = "ILLEGAL_TRANSITION"
    message = "号码状态已变化，请刷新后重试"


class QueueEmpty(Conflict):
    code = "QUEUE_EMPTY"
    message = "当前没有等候的号码"


class WindowBusy(Conflict):
    code = "WINDOW_BUSY"
    message = "本窗口有正在呼叫或办理的号码，请先办结"


class WindowNotOpen(Conflict):
    code = "WINDOW_NOT_OPEN"
    message = "窗口未开启，无法叫号"


class CategoryNotServed(Conflict):
    code = "CATEGORY_NOT_SERVED"
    message = "本窗口不办理该业务"


class RecallsNotExhausted(Conflict):
    code = "RECALLS_NOT_EXHAUSTED"
    message = "需先按规定次数重呼后才能标记过号"


class LateReturnUsed(Conflict):
    code = "LATE_RETURN_USED"
    message = "过号顺延仅限一次，请重新取号"


class WxacodeUnavailable(UpstreamUnavailable):
    code = "WXACODE_UNAVAILABLE"
    message = "微信暂时无法生成小程序码，请稍后再试"


class WxacodeRefused(DomainError):
    # WeChat refused our arguments (the configured page is not in the released mini-program,
    # most likely): retrying will not help, the configuration must change.
    status = 502
    code = "WXACODE_REFUSED"
    message = "微信拒绝生成小程序码（小程序页面未发布或配置有误），请联系系统管理员"


class CityCodeUnavailable(UpstreamUnavailable):
    code = "CITY_CODE_UNAVAILABLE"
    message = "红棉码服务暂时不可用，请改用个人码或取号机取号"


class CityCodeNotLinked(ValidationFailed):
    code = "CITY_CODE_NOT_LINKED"
    message = "本系统未接入红棉码，请出示禺好办个人码"


class CitizenNotRegistered(ValidationFailed):
    code = "CITIZEN_NOT_REGISTERED"
    message = "该市民尚未在禺好办实名登记，无法办理此操作"

"""Refusals of rating and follow-up actions."""

from __future__ import annotations

from app.errors import Conflict, NotFound, ValidationFailed


class TicketNotRatable(Conflict):
    code = "TICKET_NOT_RATABLE"
    message = "该号码尚未办结，暂不能评价"


class RatingPeriodOver(Conflict):
    code = "RATING_PERIOD_OVER"
    message = "已超过评价期限（办结后7天内）"


class AlreadyRated(Conflict):
    code = "ALREADY_RATED"
    message = "该次服务已评价"


class CommentTooLong(ValidationFailed):
    code = "COMMENT_TOO_LONG"
    message = "评价内容过长"


class TicketNotFound(NotFound):
    code = "TICKET_NOT_FOUND"
    message = "取号记录不存在"


class NotRatedYet(NotFound):
    code = "NOT_RATED_YET"
    message = "该次服务尚未评价"


class FollowUpNotFound(NotFound):
    code = "FOLLOW_UP_NOT_FOUND"
    message = "整改记录不存在"


class FollowUpClosed(Conflict):
    code = "FOLLOW_UP_CLOSED"
    message = "该差评已整改办结"


class ApplicationNotRatable(Conflict):
    code = "APPLICATION_NOT_RATABLE"
    message = "该办件尚未办结，暂不能评价"

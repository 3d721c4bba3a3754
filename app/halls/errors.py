"""Errors of the halls domain."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, ValidationFailed


class HallNotFound(NotFound):
    code = "HALL_NOT_FOUND"
    message = "办事大厅不存在"


class CategoryNotFound(NotFound):
    code = "CATEGORY_NOT_FOUND"
    message = "业务类别不存在"


class WindowNotFound(NotFound):
    code = "WINDOW_NOT_FOUND"
    message = "窗口不存在"


class WindowNotInHall(Forbidden):
    code = "WINDOW_NOT_IN_HALL"
    message = "该窗口不属于您所在的大厅"


class HallConflict(Conflict):
    code = "HALL_CONFLICT"
    message = "与已有设置冲突（编号、字母或名称重复）"


class InvalidHours(ValidationFailed):
    code = "INVALID_HOURS"
    message = "营业时间设置有误"

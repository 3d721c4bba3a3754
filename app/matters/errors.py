"""What the matter catalogue refuses."""

from __future__ import annotations

from app.errors import Conflict, NotFound, ValidationFailed


class MatterNotFound(NotFound):
    code = "MATTER_NOT_FOUND"
    message = "办事事项不存在"


class MatterVersionNotFound(NotFound):
    code = "MATTER_VERSION_NOT_FOUND"
    message = "该事项没有这个版本"


class MatterInvalid(ValidationFailed):
    code = "MATTER_INVALID"
    message = "事项定义有误"


class MatterVersionConflict(Conflict):
    code = "MATTER_VERSION_CONFLICT"
    message = "已发布的事项版本不可修改，请发布新版本"


class FormInvalid(ValidationFailed):
    code = "FORM_INVALID"
    message = "申请表填写有误"


class ParameterNotFound(NotFound):
    code = "MATTER_PARAMETER_NOT_FOUND"
    message = "该事项的审批规则没有这个参数"

"""Errors of the policy domain, each with a stable code and a Chinese message."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, ValidationFailed


class InvalidCriteria(ValidationFailed):
    code = "POLICY_CRITERIA_INVALID"
    message = "政策适用条件有误"


class InvalidProfile(ValidationFailed):
    code = "ENTERPRISE_PROFILE_INVALID"
    message = "企业信息有误"


class PolicyNotFound(NotFound):
    code = "POLICY_NOT_FOUND"
    message = "政策不存在"


class PolicyStateConflict(Conflict):
    code = "POLICY_STATE_CONFLICT"
    message = "政策当前状态不允许此操作"


class PolicyExpired(Conflict):
    code = "POLICY_EXPIRED"
    message = "政策已过有效期，不能发布"


class OtherDepartment(Forbidden):
    code = "POLICY_OTHER_DEPARTMENT"
    message = "无权管理其他部门的政策"


class NotAutomatic(Conflict):
    code = "POLICY_NOT_AUTOMATIC"
    message = "该政策不是免申即享政策"

"""Errors of the policy domain, each with a stable code and a Chinese message."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, UpstreamUnavailable, ValidationFailed
from app.identity.errors import KeepsWrites


class InvalidCriteria(ValidationFailed):
    code = "POLICY_CRITERIA_INVALID"
    message = "政策适用条件有误"


class PolicyTextNotPushable(ValidationFailed):
    """The pushed part of the title or summary holds what notify never sends (`details.field`)."""

    code = "POLICY_TEXT_NOT_PUSHABLE"
    message = "政策标题和摘要的前20个字会随订阅消息推送给企业，其中不能有手机号码或身份证号码"


class InvalidProfile(ValidationFailed):
    code = "ENTERPRISE_PROFILE_INVALID"
    message = "企业信息有误"


class PolicyNotFound(NotFound):
    code = "POLICY_NOT_FOUND"
    message = "政策不存在"


class PolicyStateConflict(Conflict):
    code = "POLICY_STATE_CONFLICT"
    message = "政策当前状态不允许此操作"


class DepartmentNotFound(NotFound):
    code = "DEPARTMENT_NOT_FOUND"
    message = "部门不存在"


class PolicyHasNoCriteria(Conflict):
    """The policy is in a state that cannot be previewed or published yet."""

    code = "POLICY_HAS_NO_CRITERIA"
    message = "政策尚未设置适用条件"


class PolicyExpired(Conflict):
    code = "POLICY_EXPIRED"
    message = "政策已过有效期，不能发布"


class OtherDepartment(Forbidden):
    code = "POLICY_OTHER_DEPARTMENT"
    message = "无权管理其他部门的政策"


class NotAutomatic(Conflict):
    code = "POLICY_NOT_AUTOMATIC"
    message = "该政策不是免申即享政策"


class AccountNotVerified(ValidationFailed, KeepsWrites):
    """The refusal is audited; the view commits before raising."""

    code = "ACCOUNT_NOT_VERIFIED"
    message = "收款账户名称须与企业登记名称一致，且账户须经银行核验属于本企业"


class AccountVerificationUnavailable(UpstreamUnavailable):
    code = "ACCOUNT_VERIFICATION_UNAVAILABLE"
    message = "银行账户核验服务暂时不可用，请稍后再试"


class FactNotPending(Conflict):
    code = "FACT_NOT_PENDING"
    message = "该信息不是待核实的企业自报信息"

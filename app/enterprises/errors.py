"""Errors of enterprise binding and agent authorisation."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, ValidationFailed

# Raised here too; defined with the identity it is about.
from app.identity.errors import KeepsWrites
from app.identity.errors import RealNameRequired as RealNameRequired


class UsccInvalid(ValidationFailed):
    code = "USCC_INVALID"
    message = "统一社会信用代码不正确，请核对"


class EnterpriseNotFound(NotFound):
    code = "ENTERPRISE_NOT_FOUND"
    message = "未在企业登记信息中找到该统一社会信用代码"


class EnterpriseNotActive(Conflict):
    code = "ENTERPRISE_NOT_ACTIVE"
    message = "该企业已注销、吊销或停业，不能绑定"


class NotLegalRepresentative(Forbidden, KeepsWrites):
    """The refusal is audited; the view commits before raising."""

    code = "NOT_LEGAL_REPRESENTATIVE"
    message = "您的身份证号与该企业登记的法定代表人不一致"


class AlreadyBound(Conflict):
    code = "ENTERPRISE_ALREADY_BOUND"
    message = "您已绑定该企业"


class EnterpriseAccessDenied(Forbidden):
    code = "ENTERPRISE_ACCESS_DENIED"
    message = "您未绑定该企业或无权代表该企业办理"


class LegalRepresentativeChanged(EnterpriseAccessDenied, KeepsWrites):
    """The registry no longer names the holder of the binding's legal representative (theirs,
    or the one who authorised an agent). The refusal is audited; the view commits before
    raising."""

    code = "LEGAL_REP_CHANGED"
    message = "企业登记的法定代表人已变更，原绑定和授权已失效，请由现任法定代表人重新绑定"


class LegalRepresentativeOnly(Forbidden):
    code = "LEGAL_REPRESENTATIVE_ONLY"
    message = "仅企业法定代表人可以进行此操作"


class BindingNotFound(NotFound):
    code = "BINDING_NOT_FOUND"
    message = "绑定关系不存在或已解除"


class AuthorisationNotFound(NotFound):
    code = "AUTHORISATION_NOT_FOUND"
    message = "授权邀请不存在、已处理或已过期"


class CannotAuthoriseSelf(ValidationFailed):
    code = "CANNOT_AUTHORISE_SELF"
    message = "不能授权自己为经办人"


class LegalRepAlreadyBound(Conflict):
    code = "LEGAL_REP_ALREADY_BOUND"
    message = "该企业已由登记的法定代表人绑定；如信息有误，请携营业执照到政务服务中心办理"


class TooManyOpenAuthorisations(Conflict):
    code = "TOO_MANY_OPEN_AUTHORISATIONS"
    message = "待确认的经办人授权过多，请先处理已发出的授权"


class RegistryLegalRepUnknown(Conflict, KeepsWrites):
    """The registry row carries no legal representative's ID number: the name alone proves
    nothing, so binding online is refused until the registry feed supplies it."""

    code = "REGISTRY_LEGAL_REP_UNKNOWN"
    message = "企业登记信息中缺少法定代表人身份信息，暂不能在线绑定，请携带证件到窗口办理"

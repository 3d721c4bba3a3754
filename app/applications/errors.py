"""What applications refuse."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.identity.errors import KeepsWrites


class ApplicationNotFound(NotFound):
    code = "APPLICATION_NOT_FOUND"
    message = "办件不存在"


class ApplicantKindMismatch(ValidationFailed):
    code = "APPLICANT_KIND_MISMATCH"
    message = "该事项的申请人类型不符"


class ActingForEnterpriseRefused(Forbidden, KeepsWrites):
    """Audited: someone tried to file or act for an enterprise they are not bound to."""

    code = "ENTERPRISE_ACCESS_DENIED"
    message = "您未绑定该企业或无权代表该企业办理"


class IdempotencyKeyReused(ValidationFailed):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "该 Idempotency-Key 已用于另一份不同内容的申请"


class ReasonRequired(ValidationFailed):
    code = "REASON_REQUIRED"
    message = "请填写理由"


class NotAssignee(Conflict):
    code = "NOT_ASSIGNEE"
    message = "该办件不在您的名下，请先认领"


class TransferTargetInvalid(ValidationFailed):
    code = "TRANSFER_TARGET_INVALID"
    message = "只能转交给本部门的其他审查人员"


class LicenceNotIssued(Conflict):
    code = "LICENCE_NOT_ISSUED"
    message = "电子印章暂不可用，未能出具证照，请稍后再试"


class InspectionNotFound(NotFound):
    code = "INSPECTION_NOT_FOUND"
    message = "核查任务不存在"


class InspectionClosed(Conflict):
    code = "INSPECTION_CLOSED"
    message = "核查任务已办结或不在可进行该操作的状态"


class ApplicationNotSigned(ValidationFailed):
    code = "APPLICATION_NOT_SIGNED"
    message = "请先签名确认申请表（告知承诺事项还须签署承诺书）"


class MaterialsStillMissing(Conflict):
    code = "MATERIALS_STILL_MISSING"
    message = "容缺受理的材料尚未补齐，暂不能准予许可"

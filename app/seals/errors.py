"""Errors of the seals domain."""

from __future__ import annotations

from app.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.identity.errors import KeepsWrites


class SealNotFound(NotFound):
    code = "SEAL_NOT_FOUND"
    message = "印章不存在"


class DocumentNotFound(NotFound):
    code = "DOCUMENT_NOT_FOUND"
    message = "文书不存在或核验码有误"


class SealUseForbidden(Forbidden, KeepsWrites):
    """The refusal is recorded (audit and seal-use log); the view commits before raising."""

    code = "SEAL_USE_FORBIDDEN"
    message = "无权使用该印章"


class SealNotUsable(Conflict, KeepsWrites):
    code = "SEAL_NOT_USABLE"
    message = "印章已停用、注销或不在有效期内，不能用印"


class SealStatusConflict(Conflict):
    code = "SEAL_STATUS_CONFLICT"
    message = "印章当前状态不允许该操作"


class DocumentStatusConflict(Conflict):
    code = "DOCUMENT_STATUS_CONFLICT"
    message = "文书当前状态不允许该操作"


class SignerNotVerified(Forbidden):
    code = "SIGNER_NOT_VERIFIED"
    message = "签名人尚未完成实名认证"


class TemplateUnknown(ValidationFailed):
    code = "TEMPLATE_UNKNOWN"
    message = "文书模板不存在"


class DocumentDataInvalid(ValidationFailed):
    code = "DOCUMENT_DATA_INVALID"
    message = "文书内容不完整或有误，请按提示修改"


class PkiMissing(DomainError):
    status = 503
    code = "SEAL_PKI_MISSING"
    message = "电子印章服务尚未初始化"


class UploadNotPdf(ValidationFailed):
    code = "UPLOAD_NOT_PDF"
    message = "上传的文件不是有效的PDF文件"


class UploadTooLarge(DomainError):
    status = 413
    code = "UPLOAD_TOO_LARGE"
    message = "上传的文件过大"


class HandwritingInvalid(ValidationFailed):
    code = "HANDWRITING_INVALID"
    message = "手写签名图片无效，请重新签名"


class IdempotencyKeyReused(ValidationFailed):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "该 Idempotency-Key 已用于另一份不同内容的文书"

"""What material uploads refuse."""

from __future__ import annotations

from app.errors import Conflict, DomainError, NotFound, ValidationFailed


class MaterialTypeUnsupported(DomainError):
    status = 415
    code = "MATERIAL_TYPE_UNSUPPORTED"
    message = "仅支持 PDF、JPEG、PNG 文件"


class MaterialTooLarge(DomainError):
    status = 413
    code = "MATERIAL_TOO_LARGE"
    message = "上传的材料文件过大"


class MaterialNotInGuide(NotFound):
    code = "MATERIAL_NOT_IN_GUIDE"
    message = "该事项不需要这项材料"


class MaterialNotFound(NotFound):
    code = "MATERIAL_NOT_FOUND"
    message = "尚未提交这项材料"


class MaterialsLocked(Conflict):
    code = "MATERIALS_LOCKED"
    message = "当前状态不能修改材料（仅草稿或待补正时可以）"


class MaterialsMissing(ValidationFailed):
    code = "MATERIALS_MISSING"
    message = "申请材料不齐全"


class LicenceUnsuitable(ValidationFailed):
    code = "LICENCE_UNSUITABLE"
    message = "该证照不能代替这项材料"

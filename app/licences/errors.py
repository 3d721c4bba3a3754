"""What the licence wallet and its verification refuse."""

from __future__ import annotations

from app.errors import Conflict, NotFound


class LicenceNotFound(NotFound):
    code = "LICENCE_NOT_FOUND"
    message = "证照不存在"


class LicenceNotShowable(Conflict):
    code = "LICENCE_NOT_SHOWABLE"
    message = "证照已失效，不能亮证"


class LicenceAlreadyRevoked(Conflict):
    code = "LICENCE_ALREADY_REVOKED"
    message = "证照已撤销"


class LicenceCodeInvalid(NotFound):
    """A licence QR that no server issued: nothing to find, like a wrong verification code."""

    code = "LICENCE_CODE_INVALID"
    message = "亮证二维码无效"

"""Errors of citizen login, login sessions, phone binding and real-name verification."""

from __future__ import annotations

from app.errors import (
    Conflict,
    Forbidden,
    TokenExpired,
    TokenInvalid,
    Unauthenticated,
    UpstreamUnavailable,
    ValidationFailed,
)


class KeepsWrites(Exception):
    """Mixin: the service flushed writes that must outlive the failed request.

    A failed login or a detected refresh-token reuse is itself worth recording (an audit entry,
    a revoked login family). The request still fails, and a failing request is rolled back, so
    the view commits before letting an error carrying this mixin propagate. The service only
    flushes what is safe to keep before raising one of these.
    """


class WeChatCodeInvalid(Unauthenticated, KeepsWrites):
    code = "WECHAT_CODE_INVALID"
    message = "无效的登录凭证，请重新登录"


class WeChatCodeUsed(Unauthenticated, KeepsWrites):
    code = "WECHAT_CODE_USED"
    message = "登录凭证已被使用，请重新登录"


class WeChatUnavailable(UpstreamUnavailable, KeepsWrites):
    code = "WECHAT_UNAVAILABLE"
    message = "微信服务暂时不可用，请稍后再试"


class UserDisabled(Forbidden, KeepsWrites):
    code = "USER_DISABLED"
    message = "该账号已被停用"


class RefreshTokenInvalid(TokenInvalid):
    code = "REFRESH_TOKEN_INVALID"
    message = "登录凭证无效，请重新登录"


class RefreshTokenExpired(TokenExpired):
    code = "REFRESH_TOKEN_EXPIRED"
    message = "登录已过期，请重新登录"


class RefreshTokenReused(TokenInvalid, KeepsWrites):
    code = "REFRESH_TOKEN_REUSED"
    message = "登录凭证已被使用，为保护账号安全请重新登录"


class PhoneCodeInvalid(ValidationFailed):
    code = "PHONE_CODE_INVALID"
    message = "手机号授权凭证无效，请重新授权"


class PhoneCodeUsed(ValidationFailed):
    code = "PHONE_CODE_USED"
    message = "手机号授权凭证已被使用，请重新授权"


class PhoneDataInvalid(ValidationFailed):
    code = "PHONE_DATA_INVALID"
    message = "手机号数据无效，请重新登录后再授权"


class NameInvalid(ValidationFailed):
    code = "NAME_INVALID"
    message = "姓名格式不正确"


class IdNumberInvalid(ValidationFailed):
    code = "ID_NUMBER_INVALID"
    message = "身份证号码不正确"


class IdNumberTaken(Conflict):
    code = "ID_NUMBER_TAKEN"
    message = "该身份证号已被其他账号实名认证"


class RealNameAlreadyVerified(Conflict):
    code = "REALNAME_ALREADY_VERIFIED"
    message = "当前账号已完成实名认证，不能更换身份信息"


class RealNameRejected(ValidationFailed, KeepsWrites):
    code = "REALNAME_REJECTED"
    message = "姓名与身份证号核验不一致"


class RealNameRequired(Forbidden):
    code = "REALNAME_REQUIRED"
    message = "请先完成实名认证"


class IdentityServiceUnavailable(UpstreamUnavailable):
    code = "IDENTITY_SERVICE_UNAVAILABLE"
    message = "身份核验服务暂时不可用，请稍后再试"


class FaceVerificationFailed(Forbidden, KeepsWrites):
    """The refusal is audited; the view commits before raising."""

    code = "FACE_VERIFICATION_FAILED"
    message = "人脸核验未通过，请重新核验"


class IdentityLevelTooLow(Forbidden, KeepsWrites):
    """The refusal is audited; the view commits before raising. `details.needed` says which
    level (verified / face) the client should lead the person to."""

    code = "IDENTITY_LEVEL_TOO_LOW"
    message = "该操作需要更高的身份核验等级，请先完成人脸核验或实名核验"

"""Errors of citizen and staff login, login sessions, phone binding, real-name and face
verification, identity levels and staff accounts."""

from __future__ import annotations

from app.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
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


# --- staff accounts and staff login ----------------------------------------------------------


class LoginFailed(Unauthenticated, KeepsWrites):
    code = "LOGIN_FAILED"
    message = "用户名或密码错误"


class AccountLocked(DomainError, KeepsWrites):
    status = 423
    code = "ACCOUNT_LOCKED"
    message = "连续多次密码错误，账号已暂时锁定，请稍后再试或联系管理员解锁"


class AccountDisabled(Unauthenticated, KeepsWrites):
    code = "ACCOUNT_DISABLED"
    message = "账号已停用，请联系管理员"


class CurrentPasswordWrong(Forbidden, KeepsWrites):
    """A credential refused, as at login: 403, not a malformed request."""

    code = "CURRENT_PASSWORD_WRONG"
    message = "当前密码不正确"


class UsernameInvalid(ValidationFailed):
    code = "USERNAME_INVALID"
    message = "用户名须为 3–64 位小写字母、数字或 . _ -"


class UsernameTaken(Conflict):
    code = "USERNAME_TAKEN"
    message = "用户名已被使用"


class RoleScopeInvalid(ValidationFailed):
    code = "ROLE_SCOPE_INVALID"
    message = (
        "角色的适用范围有误：窗口人员与大厅管理员须指定大厅，"
        "审核人员与政策专员须指定部门，系统管理员不指定范围"
    )


class RolesRequired(ValidationFailed):
    code = "ROLES_REQUIRED"
    message = "至少需要分配一个角色"


class PasswordUnchanged(ValidationFailed):
    code = "PASSWORD_UNCHANGED"
    message = "新密码不能与当前密码相同"


class StaffNotFound(NotFound):
    code = "STAFF_NOT_FOUND"
    message = "工作人员账号不存在"


class LastAdmin(Conflict):
    code = "LAST_ADMIN"
    message = "至少需要保留一个启用的系统管理员"


class CannotDeactivateSelf(Conflict):
    code = "CANNOT_DEACTIVATE_SELF"
    message = "不能停用自己的账号"


class ScanCodeUnknown(NotFound):
    code = "SCAN_CODE_UNKNOWN"
    message = "二维码无效，请在电脑上刷新后重新扫码"


class ScanCodeExpired(Conflict):
    status = 410
    code = "SCAN_CODE_EXPIRED"
    message = "二维码已过期，请在电脑上刷新后重新扫码"


class ScanCodeUsed(Conflict):
    code = "SCAN_CODE_USED"
    message = "二维码已使用，请在电脑上刷新后重新扫码"


class WeChatNotLinked(Forbidden, KeepsWrites):
    code = "WECHAT_NOT_LINKED"
    message = "该微信未绑定可用的工作人员账号，请先用账号密码登录工作台绑定"


class WeChatLinkedElsewhere(Conflict, KeepsWrites):
    code = "WECHAT_LINKED_ELSEWHERE"
    message = "该微信已绑定其他工作人员账号"

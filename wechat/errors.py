"""Typed exceptions for WeChat API error codes and for failures on our side of the wire."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class WeChatError(Exception):
    """A WeChat call failed; `errcode` is WeChat's code, or None for failures found locally."""

    # Transient errors may succeed if the same call is simply made again a little later.
    transient: ClassVar[bool] = False

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        if self.errcode is None:
            return self.errmsg
        return f"[{self.errcode}] {self.errmsg}"


class InvalidCode(WeChatError):
    """The login or phone code is unknown, expired or belongs to another app (40029)."""


class CodeUsed(WeChatError):
    """The code was already exchanged once (40163)."""


class RateLimited(WeChatError):
    """The per-minute quota of this API is used up (45011)."""

    transient = True


class QuotaExhausted(WeChatError):
    """The daily quota of this API is used up (45009); retrying today will not help."""


class SubscriptionRefused(WeChatError):
    """The user holds no authorisation for this template, or revoked it (43101)."""


class SystemBusy(WeChatError):
    """WeChat answered "system busy" (-1); the call was not carried out."""

    transient = True


class AccessTokenInvalid(WeChatError):
    """WeChat rejected the access token (40001, 40014) or found it expired (42001)."""


class InvalidCredentials(WeChatError):
    """The appid or app secret is wrong (40013, 40125, 41002, 41004)."""


class InvalidTemplate(WeChatError):
    """The subscribe-message template id is unknown to this app (40037)."""


class InvalidArgument(WeChatError):
    """WeChat refused an argument: bad data, openid, page, scene or format."""


class TemplateDataInvalid(InvalidArgument):
    """Our pre-send check found template fields WeChat would refuse; nothing was sent."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        listed = "; ".join(f"{key}: {reason}" for key, reason in problems.items())
        super().__init__(47003, f"template data invalid: {listed}")
        self.problems = dict(problems)


class PhoneDataInvalid(WeChatError):
    """Phone data could not be decrypted or carries another app's watermark."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(None, errmsg)


class TransportError(WeChatError):
    """No usable answer: timeout, connection failure or a non-JSON server error."""

    transient = True

    def __init__(self, errmsg: str, *, maybe_processed: bool = True) -> None:
        super().__init__(None, errmsg)
        # False only when the request surely never reached WeChat, so that even calls
        # that must not run twice (single-use codes, message sends) may be retried.
        self.maybe_processed = maybe_processed


class TokenLockTimeout(WeChatError):
    """Waited too long for another process to finish refreshing the access token."""

    transient = True

    def __init__(self, errmsg: str) -> None:
        super().__init__(None, errmsg)


_BY_ERRCODE: dict[int, type[WeChatError]] = {
    -1: SystemBusy,
    40001: AccessTokenInvalid,
    40014: AccessTokenInvalid,
    42001: AccessTokenInvalid,
    40029: InvalidCode,
    40163: CodeUsed,
    45011: RateLimited,
    45009: QuotaExhausted,
    43101: SubscriptionRefused,
    40037: InvalidTemplate,
    40013: InvalidCredentials,
    40125: InvalidCredentials,
    41002: InvalidCredentials,
    41004: InvalidCredentials,
    40002: InvalidArgument,
    40003: InvalidArgument,
    40097: InvalidArgument,
    40169: InvalidArgument,
    41001: InvalidArgument,
    41008: InvalidArgument,
    41030: InvalidArgument,
    43001: InvalidArgument,
    43002: InvalidArgument,
    44002: InvalidArgument,
    47001: InvalidArgument,
    47003: InvalidArgument,
}


def error_from_response(errcode: int, errmsg: str) -> WeChatError:
    """Build the typed exception for an errcode WeChat answered."""
    return _BY_ERRCODE.get(errcode, WeChatError)(errcode, errmsg)


def errcode_label(error: WeChatError | None) -> str:
    """A bounded name for how a call ended, for metrics: "0" (success), an errcode this module
    knows, "other" (an errcode it does not), "transport" (no answer) or "bad_answer"."""
    if error is None:
        return "0"
    if error.errcode is not None:
        return str(error.errcode) if error.errcode in _BY_ERRCODE else "other"
    return "transport" if isinstance(error, TransportError) else "bad_answer"

"""WeChat mini-program server API: a client, its token caches and a local emulator.

This package imports no Flask and nothing from the application; it takes every setting
as an argument so the app, scripts and tests can wire it as they need.
"""

from wechat.client import LoginSession, MiniProgramApi, PhoneInfo, SubscribeMessage, WeChatClient
from wechat.errors import (
    AccessTokenInvalid,
    CodeUsed,
    InvalidArgument,
    InvalidCode,
    InvalidCredentials,
    InvalidTemplate,
    PhoneDataInvalid,
    QuotaExhausted,
    RateLimited,
    SubscriptionRefused,
    SystemBusy,
    TemplateDataInvalid,
    TokenLockTimeout,
    TransportError,
    WeChatError,
    error_from_response,
)
from wechat.push import check_push_signature
from wechat.templates import DEFAULT_TEMPLATES, TemplateSpec
from wechat.tokens import (
    AccessToken,
    MemoryTokenCache,
    RedisTokenCache,
    SqlTokenCache,
    TokenCache,
    define_token_table,
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "AccessToken",
    "AccessTokenInvalid",
    "CodeUsed",
    "InvalidArgument",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidTemplate",
    "LoginSession",
    "MemoryTokenCache",
    "MiniProgramApi",
    "PhoneDataInvalid",
    "PhoneInfo",
    "QuotaExhausted",
    "RateLimited",
    "RedisTokenCache",
    "SqlTokenCache",
    "SubscribeMessage",
    "SubscriptionRefused",
    "SystemBusy",
    "TemplateDataInvalid",
    "TemplateSpec",
    "TokenCache",
    "TokenLockTimeout",
    "TransportError",
    "WeChatClient",
    "WeChatError",
    "check_push_signature",
    "define_token_table",
    "error_from_response",
]

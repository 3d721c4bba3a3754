"""Domain errors and the one JSON error shape every 4xx/5xx response has.

`{"code": "QR_EXPIRED", "message": "二维码已过期，请刷新", "details": {...}}`

Services raise `DomainError` subclasses; blueprints/errors.py turns them, and the HTTP errors
raised by Flask, Werkzeug or flask-smorest, into that one JSON shape.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

log = logging.getLogger(__name__)


class DomainError(Exception):
    """An error a client can act on; carries its HTTP status, stable code and Chinese message."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    # A class default each subclass sets; an instance may carry a more precise message.
    message: str = "请求有误"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or type(self).message
        self.details = details
        super().__init__(self.message)


class ValidationFailed(DomainError):
    status = 422
    code = "VALIDATION_FAILED"
    message = "提交的内容有误，请检查后重试"


class MalformedJson(DomainError):
    status = 400
    code = "MALFORMED_JSON"
    message = "请求体不是有效的 JSON"


class Unauthenticated(DomainError):
    status = 401
    code = "UNAUTHENTICATED"
    message = "请先登录"


class TokenInvalid(Unauthenticated):
    code = "TOKEN_INVALID"
    message = "登录凭证无效，请重新登录"


class TokenExpired(Unauthenticated):
    code = "TOKEN_EXPIRED"
    message = "登录已过期，请重新登录"


class Forbidden(DomainError):
    status = 403
    code = "FORBIDDEN"
    message = "无权进行此操作"


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"
    message = "请求的内容不存在"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"
    message = "操作冲突，请刷新后重试"


class RateLimited(DomainError):
    status = 429
    code = "RATE_LIMITED"
    message = "操作过于频繁，请稍后再试"


class UpstreamUnavailable(DomainError):
    status = 503
    code = "UPSTREAM_UNAVAILABLE"
    message = "外部服务暂时不可用，请稍后再试"

"""The one JSON error shape of every 4xx/5xx response, for domain and HTTP errors alike.

`{"code": "QR_EXPIRED", "message": "二维码已过期，请刷新", "details": {...}}`: domain errors
(app/errors.py) carry their own status, code and message; HTTP errors raised by Flask,
Werkzeug or flask-smorest (404, 405, 413, 415, 422, ...) get theirs here, so a client never
sees an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from app.errors import DomainError
from app.observability.metrics import count_error

log = logging.getLogger(__name__)


# Werkzeug's HTTP errors, by status, as (code, Chinese message).
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "请求格式有误"),
    401: ("UNAUTHENTICATED", "请先登录"),
    403: ("FORBIDDEN", "无权进行此操作"),
    404: ("NOT_FOUND", "请求的地址不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    409: ("CONFLICT", "操作冲突，请刷新后重试"),
    413: ("PAYLOAD_TOO_LARGE", "提交的内容过大"),
    414: ("URI_TOO_LONG", "请求地址过长"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "不支持的内容类型，请使用 application/json"),
    422: ("VALIDATION_FAILED", "提交的内容有误，请检查后重试"),
    428: ("PRECONDITION_REQUIRED", "缺少必要的请求头"),
    429: ("RATE_LIMITED", "操作过于频繁，请稍后再试"),
}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    """The project's error JSON with `status` (counted by its code for /metrics)."""
    count_error(status, code)
    response = jsonify({"code": code, "message": message, "details": details or {}})
    response.status_code = status
    return response


def _handle_domain_error(error: DomainError) -> Response:
    return error_response(error.status, error.code, error.message, error.details)


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return error_response(status, "INTERNAL_ERROR", "服务暂时不可用，请稍后再试")
    code, message = HTTP_ERRORS.get(status, ("HTTP_ERROR", "请求无法处理"))
    details: dict[str, Any] = {}
    # flask-smorest/webargs put field errors in `data["messages"]` (422, and 400 for bad JSON).
    data = getattr(error, "data", None)
    if isinstance(data, dict) and "messages" in data:
        details["fields"] = data["messages"]
        if status == 400:
            code, message = "MALFORMED_JSON", "请求体不是有效的 JSON"
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        details["allowed"] = sorted(valid_methods)
    response = error_response(status, code, message, details)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(sorted(valid_methods))
    if status == 429:
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
    return response


def _handle_database_gone(error: DBAPIError) -> Response:
    """The database connection broke under the request: a fault, not a client error; retry."""
    if not error.connection_invalidated and not isinstance(error, OperationalError):
        return _handle_unexpected(error)
    log.warning("database unavailable", exc_info=True)
    response = error_response(503, "DATABASE_UNAVAILABLE", "服务暂时不可用，请稍后再试")
    response.headers["Retry-After"] = "5"
    return response


def _handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error", extra={"error_type": type(error).__name__})
    return error_response(500, "INTERNAL_ERROR", "服务暂时不可用，请稍后再试")


def register_error_handlers(app: Flask) -> None:
    """Route every error through the one JSON shape."""
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(DBAPIError, _handle_database_gone)
    app.register_error_handler(Exception, _handle_unexpected)

"""Request rules shared by every API view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.routing import IntegerConverter

from app.errors import ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])

CONTENT_TYPES_ATTRIBUTE = "__accepts__"


# The largest id a BIGINT (and SQLite's INTEGER) column holds.
MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` in every URL, bounded to what the database can hold.

    Without a bound, /halls/99999999999999999999 reaches the driver and overflows (a 500)
    instead of simply matching no route (a 404)."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def use_bounded_ids(app: Flask) -> None:
    """Make `<int:...>` the bounded converter; call before any blueprint is registered."""
    app.url_map.converters["int"] = IdConverter


def accepts(*content_types: str) -> Callable[[F], F]:
    """Let a view take bodies of other content types than JSON (file uploads)."""

    def decorator(fn: F) -> F:
        setattr(fn, CONTENT_TYPES_ATTRIBUTE, content_types)
        return fn

    return decorator


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def enforce_json_bodies(app: Flask) -> None:
    """Refuse API request bodies that are not JSON with 415, before any view parses them,
    and NUL characters anywhere in the input with 422 (PostgreSQL cannot store them in text,
    and no legitimate form field holds one)."""

    @app.before_request
    def _check_content_type() -> None:
        if not request.path.startswith("/api/v1/"):
            return
        if _contains_nul(list(request.args.items(multi=True))) or "\x00" in request.path:
            raise ValidationFailed("提交的内容含有不允许的字符", fields={"query": ["NUL"]})
        if not _has_body():
            return
        view = current_app.view_functions.get(request.endpoint or "")
        allowed = ("application/json",)
        view_class = getattr(view, "view_class", None)
        handler = getattr(view_class, request.method.lower(), view) if view_class else view
        allowed = getattr(handler, CONTENT_TYPES_ATTRIBUTE, allowed)
        if request.mimetype not in allowed:
            raise UnsupportedMediaType()
        if request.mimetype == "application/json" and _contains_nul(request.get_json(silent=True)):
            raise ValidationFailed("提交的内容含有不允许的字符", fields={"json": ["NUL"]})

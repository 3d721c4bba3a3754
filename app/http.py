"""Request rules shared by every API view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

F = TypeVar("F", bound=Callable[..., Any])

CONTENT_TYPES_ATTRIBUTE = "__accepts__"


def accepts(*content_types: str) -> Callable[[F], F]:
    """Let a view take bodies of other content types than JSON (file uploads)."""

    def decorator(fn: F) -> F:
        setattr(fn, CONTENT_TYPES_ATTRIBUTE, content_types)
        return fn

    return decorator


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def enforce_json_bodies(app: Flask) -> None:
    """Refuse API request bodies that are not JSON with 415, before any view parses them."""

    @app.before_request
    def _check_content_type() -> None:
        if not request.path.startswith("/api/v1/") or not _has_body():
            return
        view = current_app.view_functions.get(request.endpoint or "")
        allowed = ("application/json",)
        view_class = getattr(view, "view_class", None)
        handler = getattr(view_class, request.method.lower(), view) if view_class else view
        allowed = getattr(handler, CONTENT_TYPES_ATTRIBUTE, allowed)
        if request.mimetype not in allowed:
            raise UnsupportedMediaType()

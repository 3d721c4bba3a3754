"""Request rules shared by every API view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    RequestURITooLarge,
    UnsupportedMediaType,
)
from werkzeug.routing import IntegerConverter

from app.errors import MalformedJson, ValidationFailed

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


# Longer than any URL of this API (gunicorn.conf.py lets up to 8 KB through to say so in JSON).
MAX_URL_LENGTH = 4096
# Deeper JSON than any body of this API: refused before parsers and schemas recurse into it.
MAX_JSON_DEPTH = 32


def _unstorable(text: str) -> bool:
    """NUL (PostgreSQL cannot store it in text) or a lone surrogate (not UTF-8 at all)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_problem(value: Any) -> str | None:
    """What is wrong with a parsed JSON body, walked without recursion; None if nothing."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return "depth"
        if isinstance(item, str):
            if _unstorable(item):
                return "characters"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _unstorable(key):
                    return "characters"
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and item in (float("inf"), float("-inf")):
            return "number"
        elif isinstance(item, int) and not -MAX_ID - 1 <= item <= MAX_ID:
            return "number"  # no field here holds more than a BIGINT
    return None


def view_method() -> Callable[..., Any] | None:
    """The function that will answer this request (for a MethodView, its method)."""
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    method = request.method.lower()
    found = getattr(view_class, method, None)
    if found is None and method == "head":
        found = getattr(view_class, "get", None)
    return found


def _requires_json_body(view: Callable[..., Any] | None) -> bool:
    """Whether the view declared a required JSON body (`@blp.arguments(Schema)`)."""
    arguments = getattr(view, "_apidoc", {}).get("arguments", {})
    return any(
        p.get("in") == "json" and p.get("required", False) for p in arguments.get("parameters", [])
    )


def _parsed_json() -> Any:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    # A chunked body has no length to refuse up front, and Werkzeug cuts its stream at the
    # limit: a body that fills it was longer (else it would be JSON cut in two: a 400).
    if request.content_length is None and limit and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()
    try:
        return request.get_json()
    except RecursionError:
        raise MalformedJson("JSON 嵌套层级过深", reason="depth") from None
    except BadRequest:
        raise MalformedJson() from None


_MALFORMED = {"depth": "JSON 嵌套层级过深", "number": "数字超出范围"}


def enforce_json_bodies(app: Flask) -> None:
    """Check API input before any view parses it: bodies that are not JSON get 415; JSON that
    is malformed, deeper than MAX_JSON_DEPTH or holds an infinite number gets 400; NUL or a lone
    surrogate anywhere in the input gets 422 (the database cannot store them, and no
    legitimate field holds one)."""

    @app.before_request
    def _check_content_type() -> None:
        if request.routing_exception is not None:
            return  # no such route or method: that answer (404/405) comes first
        if len(request.full_path) > MAX_URL_LENGTH:
            raise RequestURITooLarge()
        if not request.path.startswith("/api/v1/"):
            return
        query = [text for pair in request.args.items(multi=True) for text in pair]
        if any(_unstorable(text) for text in (*query, request.path)):
            raise ValidationFailed("提交的内容含有不允许的字符", fields={"query": ["NUL"]})
        if not _has_body():
            if _requires_json_body(view_method()):
                # The document says the body is required; webargs would read none as {}.
                raise ValidationFailed("请求体不能为空", fields={"json": ["缺少请求体"]})
            return
        allowed = getattr(view_method(), CONTENT_TYPES_ATTRIBUTE, ("application/json",))
        if request.mimetype not in allowed:
            raise UnsupportedMediaType()
        if request.mimetype != "application/json":
            return
        problem = _json_problem(_parsed_json())
        if problem == "characters":
            raise ValidationFailed("提交的内容含有不允许的字符", fields={"json": ["NUL"]})
        if problem is not None:
            raise MalformedJson(_MALFORMED[problem], reason=problem)

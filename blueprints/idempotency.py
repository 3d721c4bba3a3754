"""The `Idempotency-Key` header of writes a phone may retry (take a ticket, book, issue)."""

from __future__ import annotations

import re
from typing import Any

from flask import request

from app.errors import ValidationFailed

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, if any (1-64 URL-safe characters); 422 when malformed."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _VALID_KEY.match(raw):
        raise ValidationFailed(
            "Idempotency-Key 格式有误", fields={HEADER: ["1-64 个字母数字或 ._:-"]}
        )
    return raw


def idempotency_doc(description: str) -> dict[str, Any]:
    """The OpenAPI header parameter, for `@blp.doc(parameters=[...])`."""
    return {
        "in": "header",
        "name": HEADER,
        "schema": {"type": "string", "pattern": _VALID_KEY.pattern},
        "description": description,
    }

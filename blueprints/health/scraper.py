"""Who may read /metrics: Prometheus with `METRICS_TOKEN`, else (development) this machine only.

Metrics name routes, error rates and queue lengths: nothing personal, but not for the public.

- `METRICS_TOKEN` set (production must set it, config validate): `Authorization: Bearer
  <token>`, compared in constant time; anything else is 401, because the right credential
  would be accepted and the scraper's operator should learn that it is missing or wrong.
- No token (development, tests): loopback callers only, and only when no proxy forwarded the
  request (a balancer on the same machine connects from loopback for every client). Any other
  caller gets 404: no credential exists that it could present, so the endpoint does not
  exist for it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from app.errors import NotFound, Unauthenticated
from blueprints.authz import CHECK_ATTRIBUTE, mark_rule

F = TypeVar("F", bound=Callable[..., Any])

RULE = "metrics_token"
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def _digest(value: str) -> bytes:
    # Equal-length inputs for compare_digest, so the time does not tell the token's length.
    return hashlib.sha256(value.encode()).digest()


def _from_this_machine() -> bool:
    if any(header in request.headers for header in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def authorise_scrape() -> None:
    """Refuse a caller that may not read the metrics (see the module docstring)."""
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if expected:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        supplied = token.strip() if scheme.lower() == "bearer" else ""
        if not hmac.compare_digest(_digest(supplied), _digest(expected)):
            raise Unauthenticated("指标接口需要有效的采集令牌")
        return
    if not _from_this_machine():
        raise NotFound("请求的地址不存在")


def scraper_only(fn: F) -> F:
    """The view's rule (blueprints/authz.py): checked by `authorise_request` before the view."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not g.get("authorised"):
            authorise_scrape()
        return fn(*args, **kwargs)

    setattr(wrapper, CHECK_ATTRIBUTE, authorise_scrape)
    return mark_rule(cast(F, wrapper), RULE)

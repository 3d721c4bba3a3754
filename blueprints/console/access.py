"""Who is using the console: the staff session cookie, idle timeout, role checks and CSRF.

The console keeps a login family id in Flask's signed session cookie (HttpOnly, SameSite=Lax,
Secure in production): logging out, a password change or a deactivated account revoke the
family, and the console session ends with it, as the API's tokens do. The principal is read
afresh from the database on every request (roles change), so `require_scope` and the services
see the same caller the API would.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import current_app, g, request, session, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

from app.db import get_session, utcnow
from app.errors import DomainError, Forbidden, TokenInvalid
from app.identity.access_tokens import Principal
from app.identity.models import StaffAccount
from app.identity.principals import principal_for
from app.identity.sessions import end_session, is_family_active, open_family
from blueprints.authz import ADMIN_ROLE, mark_rule

F = TypeVar("F", bound=Callable[..., Any])

STAFF_KEY = "staff_id"
FAMILY_KEY = "family_id"
SEEN_KEY = "seen"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginNeeded(DomainError):
    """No console session, or it ended: back to the login page, then to where they were."""

    status = 401
    code = "CONSOLE_LOGIN_NEEDED"
    message = "请先登录工作台"


class CsrfRefused(DomainError):
    status = 400
    code = "CSRF_REFUSED"
    message = "页面已过期或请求来源不可信，请刷新页面后重试"


def sign_in(account: StaffAccount) -> None:
    """Start a console session for `account` (the caller commits)."""
    family = open_family(get_session(), "staff", account.id, now=utcnow())
    session.clear()  # a fresh cookie (and CSRF token) at every login: no session fixation
    g.pop("csrf_token", None)  # Flask-WTF's copy of the old token for this request
    session[STAFF_KEY] = account.id
    session[FAMILY_KEY] = family.id
    session[SEEN_KEY] = int(time.time())


def sign_out(reason: str = "logout") -> None:
    """End the console session and its login family (the caller commits)."""
    family_id = session.get(FAMILY_KEY)
    if family_id:
        end_session(
            get_session(), family_id, now=utcnow(), reason=reason, request_id=g.get("request_id")
        )
    session.clear()
    g.pop("csrf_token", None)


def _load_principal() -> Principal:
    staff_id, family_id = session.get(STAFF_KEY), session.get(FAMILY_KEY)
    if not staff_id or not family_id:
        raise LoginNeeded()
    idle_seconds = int(current_app.config["CONSOLE_IDLE_MINUTES"]) * 60
    now = int(time.time())
    if now - int(session.get(SEEN_KEY, 0)) > idle_seconds:
        sign_out(reason="idle_timeout")
        get_session().commit()
        raise LoginNeeded("长时间未操作，已自动退出，请重新登录")
    db = get_session()
    if not is_family_active(db, family_id):
        session.clear()
        raise LoginNeeded("登录已失效，请重新登录")
    try:
        principal = principal_for(db, "staff", int(staff_id))
    except TokenInvalid:
        session.clear()
        raise LoginNeeded("账号不可用，请联系管理员") from None
    # Polling (the scan-login and screen refreshes) is not activity: only the person's requests.
    if request.headers.get("X-Console-Poll") != "1":
        session[SEEN_KEY] = now
    principal = Principal(
        kind=principal.kind,
        id=principal.id,
        roles=principal.roles,
        scopes=principal.scopes,
        family_id=family_id,
    )
    g.principal = principal
    return principal


def console_page(*roles: str) -> Callable[[F], F]:
    """A console view for staff holding one of `roles` (admin always passes; none: any staff).

    Scope (which hall or department) is then checked in the view with `require_scope`, as in
    the API.
    """

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = _load_principal()
            if roles and not principal.has_role(ADMIN_ROLE, *roles):
                raise Forbidden("当前账号没有该页面的权限", required_roles=list(roles))
            return fn(*args, **kwargs)

        return mark_rule(cast(F, wrapper), "console:" + ",".join(roles))

    return decorator


def console_public(fn: F) -> F:
    """A console view anyone may open (login page, the hall screen with its own token)."""
    return mark_rule(fn, "public")


def has_role(*roles: str) -> bool:
    """For navigation: does the signed-in staff member hold one of `roles` (admin: all)?"""
    principal: Principal | None = g.get("principal")
    return principal is not None and principal.has_role(ADMIN_ROLE, *roles)


def check_csrf() -> None:
    """Every unsafe console request carries the session's token: a form field or, for htmx and
    fetch, the X-CSRFToken header."""
    if request.method in SAFE_METHODS:
        return
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
    try:
        validate_csrf(token)
    except (ValidationError, CSRFError):
        raise CsrfRefused() from None


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path of this site, never another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/"):
            return target
    return url_for("console.home")

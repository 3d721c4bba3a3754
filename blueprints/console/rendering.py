"""What every console page shares: the layout's context (who, navigation, CSRF token), error
pages instead of JSON, and the headers of a staff page."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException

from app.calendar import LOCAL_TZ
from app.db import get_session
from app.errors import DomainError
from app.identity.access_tokens import Principal
from app.identity.models import StaffAccount
from app.queueing.codes import qr_png
from blueprints.authz import ADMIN_ROLE
from blueprints.console.access import LoginNeeded, check_csrf


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: tuple[str, ...]  # empty: every staff member
    section: str  # the endpoints of the desk's pages start with it (the menu marks the desk)


# The console's desks, in menu order. A desk appears for the roles that may use it.
NAVIGATION = (
    NavItem("首页", "console.home", (), "console.home"),
    NavItem("窗口终端", "console.terminal", ("window_clerk",), "console.terminal"),
    NavItem("审批台", "console.review_queue", ("reviewer",), "console.review"),
    NavItem("政策台", "console.policy_list", ("policy_officer",), "console.policy"),
    NavItem("大厅看板", "console.dashboard", ("hall_manager",), "console.dashboard"),
    NavItem("系统管理", "console.admin_home", (ADMIN_ROLE,), "console.admin"),
    NavItem("我的账号", "console.account", (), "console.account"),
)


def navigation(principal: Principal | None) -> list[dict[str, Any]]:
    """The menu for `principal`: desks that exist and that one of their roles may open."""
    if principal is None:
        return []
    endpoint = request.endpoint or ""
    items = []
    for item in NAVIGATION:
        if item.endpoint not in current_app.view_functions:
            continue
        if item.roles and not principal.has_role(ADMIN_ROLE, *item.roles):
            continue
        items.append(
            {
                "label": item.label,
                "url": url_for(item.endpoint),
                "active": endpoint.startswith(item.section),
            }
        )
    return items


def _layout_context() -> dict[str, Any]:
    principal: Principal | None = g.get("principal")
    staff_name = None
    if principal is not None and principal.kind == "staff":
        account = get_session().get(StaffAccount, principal.id)
        staff_name = account.display_name if account else None
    return {
        "csrf_token": generate_csrf,
        "principal": principal,
        "staff_name": staff_name,
        "navigation": navigation(principal),
    }


def qr_data_uri(text: str) -> str:
    """A QR code of `text` as an inline PNG for an <img> (allowed by the pages' CSP)."""
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode("ascii")


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def error_page(status: int, title: str, message: str) -> Response:
    """An error as a page, as an htmx fragment (shown in the page's alert area) or as JSON."""
    if wants_json():
        response = jsonify(code=title, message=message, details={})
    elif is_htmx():
        response = Response(
            render_template("console/_alert.html", message=message, kind="error"),
            mimetype="text/html",
        )
        # htmx does not swap error responses by default: route them to the alert region.
        response.headers["HX-Retarget"] = "#alerts"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = Response(
            render_template("console/error.html", status=status, message=message),
            mimetype="text/html",
        )
    response.status_code = status
    return response


def _login_needed(error: LoginNeeded) -> Response:
    flash(error.message, "info")
    target = request.full_path if request.method == "GET" and not is_htmx() else request.referrer
    login_url = url_for("console.login", next=target or None)
    if is_htmx():
        response = Response(status=401)
        response.headers["HX-Redirect"] = login_url
        return response
    if wants_json():
        return error_page(401, error.code, error.message)
    return cast(Response, redirect(login_url))


def _domain_error(error: DomainError) -> Response:
    get_session().rollback()
    if error.status >= 500:
        return error_page(error.status, error.code, "服务暂时不可用，请稍后再试")
    return error_page(error.status, error.code, error.message)


_HTTP_MESSAGES = {
    400: "请求格式有误",
    403: "无权访问此页面",
    404: "页面不存在",
    405: "不支持该操作",
    413: "提交的内容过大",
    429: "操作过于频繁，请稍后再试",
}


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return error_page(status, "INTERNAL_ERROR", "服务暂时不可用，请稍后再试")
    return error_page(status, "HTTP_ERROR", _HTTP_MESSAGES.get(status, "请求无法处理"))


def page_headers(response: Response) -> Response:
    # Staff pages hold personal data: never cached, never framed, scripts only from this site.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'",
    )
    return response


def beijing(moment: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC moment as people in Panyu read it (the templates' `beijing` filter)."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL_TZ).strftime(pattern)


def install(blp: Blueprint) -> None:
    """Hook the shared handling into the console blueprint."""
    blp.add_app_template_filter(beijing, "beijing")
    blp.before_request(check_csrf)
    blp.context_processor(_layout_context)
    blp.after_request(page_headers)
    blp.register_error_handler(LoginNeeded, _login_needed)
    blp.register_error_handler(DomainError, _domain_error)
    blp.register_error_handler(HTTPException, _http_error)

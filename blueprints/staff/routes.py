"""Staff login, the caller's own account, and staff account management (admins).

Refreshing and logging out go through the shared `/auth/refresh` and `/auth/logout`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from flask import current_app, g
from flask.views import MethodView

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import Forbidden
from app.extensions import limiter
from app.identity import scan_login
from app.identity import staff as staff_service
from app.identity.models import StaffAccount, StaffRole, User
from blueprints.authz import (
    ADMIN_ROLE,
    citizen_required,
    current_principal,
    public,
    require_scope,
    staff_required,
)
from blueprints.logins import keeping_writes, login_rate, start_login, token_pair_body
from blueprints.openapi import Blueprint
from blueprints.pagination import PageRequest, page_from, page_schema
from blueprints.staff.schemas import (
    PasswordChangeIn,
    PasswordResetIn,
    ScanConfirmIn,
    ScanConfirmOut,
    StaffAccountOut,
    StaffCreateIn,
    StaffListArgs,
    StaffLoginIn,
    StaffLoginOut,
    StaffUpdateIn,
)

blp = Blueprint("staff", __name__, url_prefix="/staff", description="工作人员：登录与账号管理")


def _lockout_settings() -> dict[str, int]:
    config = current_app.config
    return {
        "max_failures": int(config["STAFF_MAX_FAILED_LOGINS"]),
        "lockout_minutes": int(config["STAFF_LOCKOUT_MINUTES"]),
    }


def _actor() -> Actor:
    return Actor("staff", current_principal().id)


def _grants(rows: list[dict[str, Any]]) -> list[tuple[StaffRole, int | None, int | None]]:
    return [(row["role"], row["hall_id"], row["department_id"]) for row in rows]


@blp.route("/auth/login")
class StaffLogin(MethodView):
    decorators: ClassVar[list[Callable[..., Any]]] = [limiter.limit(login_rate)]

    @blp.arguments(StaffLoginIn)
    @blp.response(200, StaffLoginOut)
    @blp.alt_response(401, description="用户名或密码错误（两者不加区分），或账号已停用")
    @blp.alt_response(423, description="连续失败次数过多，账号暂时锁定（details.locked_until）")
    @blp.alt_response(429, description="登录尝试过于频繁")
    @public
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Log in with username and password; returns a token pair and the account's roles."""
        session = get_session()
        now = utcnow()
        with keeping_writes(session):
            account = staff_service.authenticate(
                session,
                body["username"],
                body["password"],
                now=now,
                request_id=g.get("request_id"),
                **_lockout_settings(),
            )
        pair = start_login(session, "staff", account.id, now=now)
        session.commit()
        return {**token_pair_body(pair, now), "staff": account}


@blp.route("/me")
class StaffMe(MethodView):
    @blp.response(200, StaffAccountOut)
    @blp.alt_response(401, description="未登录")
    @blp.alt_response(403, description="不是工作人员")
    @staff_required()
    def get(self) -> StaffAccount:
        """The caller's own staff account and roles."""
        return staff_service.get_staff(get_session(), current_principal().id)


@blp.route("/me/password")
class StaffMyPassword(MethodView):
    @blp.arguments(PasswordChangeIn)
    @blp.response(204)
    @blp.alt_response(422, description="当前密码不正确，或新密码强度不足")
    @blp.alt_response(423, description="当前密码连续输错，账号已锁定")
    @staff_required()
    def post(self, body: dict[str, str]) -> None:
        """Change one's own password; every other login of the account ends."""
        session = get_session()
        principal = current_principal()
        account = staff_service.get_staff(session, principal.id)
        # A wrong current password counts towards the lockout: keep that write.
        with keeping_writes(session):
            staff_service.change_password(
                session,
                account,
                body["current_password"],
                body["new_password"],
                now=utcnow(),
                keep_family_id=principal.family_id or None,
                request_id=g.get("request_id"),
                **_lockout_settings(),
            )
        session.commit()


@blp.route("/accounts")
class StaffAccounts(MethodView):
    @blp.arguments(StaffListArgs, location="query")
    @blp.response(200, page_schema(StaffAccountOut))
    @blp.alt_response(403, description="非管理员；大厅管理员只能查看本大厅的窗口人员")
    @staff_required("hall_manager")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List staff accounts (admins: all; hall managers: window clerks of their hall)."""
        principal = current_principal()
        page = PageRequest.of(args)
        filters = {k: v for k, v in args.items() if k not in ("page", "page_size")}
        if not principal.has_role(ADMIN_ROLE):
            hall_id = filters.get("hall_id")
            if hall_id is None:
                # Without a hall a manager would be asking for every hall's staff.
                raise Forbidden("大厅管理员只能查看本大厅的人员，请指定大厅（hall_id）")
            require_scope(["hall_manager"], hall_id)
            filters = {
                "hall_id": hall_id,
                "role": StaffRole.WINDOW_CLERK,
                "active": filters.get("active"),
            }
        accounts, total = staff_service.list_staff(
            get_session(), offset=page.offset, limit=page.limit, **filters
        )
        return page_from(accounts, total, args)

    @blp.arguments(StaffCreateIn)
    @blp.response(201, StaffAccountOut)
    @blp.alt_response(409, description="用户名已被使用")
    @blp.alt_response(422, description="用户名、密码或角色范围不符合要求")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, Any]) -> StaffAccount:
        """Create a staff account with its roles (admins)."""
        session = get_session()
        account = staff_service.create_staff(
            session,
            username=body["username"],
            display_name=body["display_name"],
            password=body["password"],
            grants=_grants(body["roles"]),
            actor=_actor(),
            now=utcnow(),
            request_id=g.get("request_id"),
        )
        session.commit()
        return account


@blp.route("/accounts/<int:staff_id>")
class StaffAccountItem(MethodView):
    @blp.response(200, StaffAccountOut)
    @blp.alt_response(404, description="账号不存在")
    @staff_required(ADMIN_ROLE)
    def get(self, staff_id: int) -> StaffAccount:
        """One staff account (admins)."""
        return staff_service.get_staff(get_session(), staff_id)

    @blp.arguments(StaffUpdateIn)
    @blp.response(200, StaffAccountOut)
    @blp.alt_response(404, description="账号不存在")
    @blp.alt_response(409, description="会停用自己，或移除最后一个管理员")
    @blp.alt_response(422, description="角色范围不符合要求")
    @staff_required(ADMIN_ROLE)
    def patch(self, body: dict[str, Any], staff_id: int) -> StaffAccount:
        """Change the name, roles or active state of an account (admins)."""
        session = get_session()
        account = staff_service.get_staff(session, staff_id)
        context: dict[str, Any] = {
            "actor": _actor(),
            "now": utcnow(),
            "request_id": g.get("request_id"),
        }
        if "display_name" in body:
            staff_service.rename(session, account, body["display_name"], **context)
        if "roles" in body:
            staff_service.update_grants(session, account, _grants(body["roles"]), **context)
        if "active" in body:
            staff_service.set_active(session, account, body["active"], **context)
        session.commit()
        return account


@blp.route("/accounts/<int:staff_id>/unlock")
class StaffAccountUnlock(MethodView):
    @blp.response(200, StaffAccountOut)
    @blp.alt_response(404, description="账号不存在")
    @staff_required(ADMIN_ROLE)
    def post(self, staff_id: int) -> StaffAccount:
        """Lift a login lockout (admins)."""
        session = get_session()
        account = staff_service.get_staff(session, staff_id)
        staff_service.unlock(
            session, account, actor=_actor(), now=utcnow(), request_id=g.get("request_id")
        )
        session.commit()
        return account


@blp.route("/accounts/<int:staff_id>/reset-password")
class StaffAccountResetPassword(MethodView):
    @blp.arguments(PasswordResetIn)
    @blp.response(200, StaffAccountOut)
    @blp.alt_response(404, description="账号不存在")
    @blp.alt_response(422, description="新密码强度不足")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, str], staff_id: int) -> StaffAccount:
        """Set a new password for an account; unlocks it and ends its logins (admins)."""
        session = get_session()
        account = staff_service.get_staff(session, staff_id)
        staff_service.reset_password(
            session,
            account,
            body["password"],
            actor=_actor(),
            now=utcnow(),
            request_id=g.get("request_id"),
        )
        session.commit()
        return account


@blp.route("/scan-confirmations")
class StaffScanConfirmation(MethodView):
    @blp.arguments(ScanConfirmIn)
    @blp.response(200, ScanConfirmOut)
    @blp.alt_response(403, description="未实名核验，或该微信未绑定可用的工作人员账号（已记录）")
    @blp.alt_response(404, description="二维码无效")
    @blp.alt_response(409, description="二维码已使用，或该微信已绑定其他工作人员账号")
    @blp.alt_response(410, description="二维码已过期")
    @citizen_required
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Confirm a staff console QR from the mini-program: log the linked staff member in
        (the console page continues by itself), or link this WeChat account to the staff
        account that showed the QR."""
        session = get_session()
        user = session.get(User, current_principal().id)
        if user is None:
            raise Forbidden()
        with keeping_writes(session):
            challenge = scan_login.confirm(
                session,
                body["code"],
                user,
                now=utcnow(),
                face_recent_seconds=current_app.config["FACE_RECENT_SECONDS"],
                request_id=g.get("request_id"),
            )
        account = staff_service.get_staff(session, challenge.staff_id or 0)
        session.commit()
        return {"purpose": challenge.purpose.value, "staff_display_name": account.display_name}

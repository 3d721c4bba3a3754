"""Admin pages: halls (windows, categories, hall screens' display tokens), staff accounts and
their roles, seals and what they are authorised for.

Every change goes through the service the API calls, with the admin as the audited actor;
refusals of a service (a taken username, a weak password, a role without its scope, a window
number in use) are shown beside the field they concern.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import DomainError, ValidationFailed
from app.halls import service as halls
from app.identity import staff as staff_service
from app.identity.models import StaffRole
from app.organisation.models import Department, Hall
from app.queueing import displays
from app.seals import get_seal_context
from app.seals.lifecycle import change_seal_status, list_seals
from app.seals.models import Seal, SealStatus
from blueprints.authz import ADMIN_ROLE, current_principal
from blueprints.console import blp
from blueprints.console.access import console_page

ROLE_TEXT = {
    StaffRole.WINDOW_CLERK: "窗口人员",
    StaffRole.HALL_MANAGER: "大厅主管",
    StaffRole.REVIEWER: "审查人员",
    StaffRole.POLICY_OFFICER: "政策专员",
    StaffRole.ADMIN: "系统管理员",
}
SEAL_STATUS_TEXT = {"active": "使用中", "suspended": "已停用", "revoked": "已注销"}


def _actor() -> Actor:
    return Actor("staff", current_principal().id)


def _request_id() -> str | None:
    return g.get("request_id")


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class CategoryForm(FlaskForm):
    name = StringField("业务类别名称", validators=[DataRequired("请填写名称"), Length(max=64)])
    prefix = StringField(
        "号码字母",
        validators=[DataRequired("请填写号码字母"), Regexp(r"^[A-Z]$", message="须为一个大写字母")],
    )
    daily_cap = IntegerField(
        "每日号源", default=300, validators=[DataRequired("请填写每日号源"), NumberRange(1, 9999)]
    )
    typical_minutes = IntegerField(
        "一般办理时长（分钟）",
        default=10,
        validators=[DataRequired("请填写时长"), NumberRange(1, 480)],
    )


class WindowForm(FlaskForm):
    number = IntegerField(
        "窗口号",
        validators=[DataRequired("请填写窗口号"), NumberRange(1, 999, "窗口号为 1 至 999")],
    )
    label = StringField("窗口名称（可选）", validators=[Optional(), Length(max=64)])
    category_ids = CheckboxesField("办理的业务类别", coerce=int)


class DisplayForm(FlaskForm):
    location = StringField(
        "大厅屏位置", validators=[DataRequired("请填写位置，如“一楼入口屏”"), Length(max=64)]
    )


class StaffForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请填写用户名"), Length(max=64)])
    display_name = StringField("姓名", validators=[DataRequired("请填写姓名"), Length(max=128)])
    password = PasswordField(
        "初始密码", validators=[DataRequired("请设置初始密码"), Length(max=256)]
    )
    role = SelectField("角色")
    hall_id = SelectField("大厅（窗口人员、大厅主管）", coerce=int)
    department_id = SelectField("部门（审查人员、政策专员）", coerce=int)


class GrantsForm(FlaskForm):
    """An account's roles: keep the ticked ones, optionally add one more."""

    keep = CheckboxesField("保留的角色", coerce=int)
    role = SelectField("新增角色")
    hall_id = SelectField("大厅（窗口人员、大厅主管）", coerce=int)
    department_id = SelectField("部门（审查人员、政策专员）", coerce=int)


class PasswordResetForm(FlaskForm):
    new_password = PasswordField(
        "新密码", validators=[DataRequired("请填写新密码"), Length(max=256)]
    )


class SealStatusForm(FlaskForm):
    reason = StringField("原因", validators=[Optional(), Length(max=200)])
    confirmed = BooleanField("我已核实，确认操作")


def _choices(pairs: Any) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _scope_choices(form: StaffForm | GrantsForm) -> None:
    session = get_session()
    form.role.choices = _choices((role.value, ROLE_TEXT[role]) for role in StaffRole)
    if isinstance(form, GrantsForm):
        form.role.choices = _choices([("", "—")]) + form.role.choices
    form.hall_id.choices = _choices(
        [(0, "—")] + [(h.id, h.name) for h in session.scalars(select(Hall).order_by(Hall.id))]
    )
    form.department_id.choices = _choices(
        [(0, "—")]
        + [(d.id, d.name) for d in session.scalars(select(Department).order_by(Department.id))]
    )


def _beside(form: FlaskForm, refused: DomainError, default: str) -> None:
    """A service's refusal beside the field it names (or `default`)."""
    name = str(refused.details.get("field", "")) or default
    field = form._fields.get(name) or form._fields[default]
    field.errors = [*field.errors, refused.message]


# --- home and halls ---------------------------------------------------------------------------


@blp.get("/admin")
@console_page(ADMIN_ROLE)
def admin_home() -> str:
    session = get_session()
    return render_template(
        "console/admin_home.html",
        hall_count=len(halls.list_halls(session)),
        staff_count=staff_service.list_staff(session, limit=1)[1],
        seal_count=len(list_seals(session)),
    )


@blp.get("/admin/halls")
@console_page(ADMIN_ROLE)
def admin_halls() -> str:
    return render_template("console/admin_halls.html", halls=halls.list_halls(get_session()))


def _hall_page(
    hall_id: int,
    *,
    category_form: CategoryForm | None = None,
    window_form: WindowForm | None = None,
    display_form: DisplayForm | None = None,
    issued: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    session = get_session()
    hall = halls.get_hall(session, hall_id)
    categories = halls.list_categories(session, hall_id)
    window_form = window_form or WindowForm()
    window_form.category_ids.choices = _choices((c.id, c.name) for c in categories)
    return (
        render_template(
            "console/admin_hall.html",
            hall=hall,
            categories=categories,
            windows=halls.list_windows(session, hall_id),
            screens=displays.list_for_hall(session, hall_id),
            category_form=category_form or CategoryForm(),
            window_form=window_form,
            display_form=display_form or DisplayForm(),
            issued=issued,
        ),
        status,
    )


@blp.get("/admin/halls/<int:hall_id>")
@console_page(ADMIN_ROLE)
def admin_hall(hall_id: int) -> Any:
    return _hall_page(hall_id)


@blp.post("/admin/halls/<int:hall_id>/categories")
@console_page(ADMIN_ROLE)
def admin_add_category(hall_id: int) -> Any:
    form = CategoryForm()
    if not form.validate_on_submit():
        return _hall_page(hall_id, category_form=form, status=422)
    session = get_session()
    try:
        halls.create_category(
            session,
            hall_id,
            {
                "name": (form.name.data or "").strip(),
                "prefix": form.prefix.data,
                "daily_cap": form.daily_cap.data,
                "typical_minutes": float(form.typical_minutes.data or 10),
            },
        )
    except DomainError as refused:
        session.rollback()
        _beside(form, refused, "prefix")
        return _hall_page(hall_id, category_form=form, status=422)
    session.commit()
    flash("业务类别已添加", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


@blp.post("/admin/halls/<int:hall_id>/windows")
@console_page(ADMIN_ROLE)
def admin_add_window(hall_id: int) -> Any:
    form = WindowForm()
    form.category_ids.choices = _choices(
        (c.id, c.name) for c in halls.list_categories(get_session(), hall_id)
    )
    if not form.validate_on_submit():
        return _hall_page(hall_id, window_form=form, status=422)
    session = get_session()
    try:
        halls.create_window(
            session,
            hall_id,
            number=int(form.number.data or 0),
            label=(form.label.data or "").strip() or None,
            category_ids=form.category_ids.data or [],
        )
    except DomainError as refused:
        session.rollback()
        _beside(form, refused, "number")
        return _hall_page(hall_id, window_form=form, status=422)
    session.commit()
    flash("窗口已添加", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


@blp.post("/admin/halls/<int:hall_id>/displays")
@console_page(ADMIN_ROLE)
def admin_add_display(hall_id: int) -> Any:
    """Register a hall screen: its token is shown once, as the address to open on the TV."""
    form = DisplayForm()
    if not form.validate_on_submit():
        return _hall_page(hall_id, display_form=form, status=422)
    session = get_session()
    halls.get_hall(session, hall_id)
    issued = displays.register(
        session,
        hall_id,
        name=(form.location.data or "").strip(),
        staff_id=current_principal().id,
        now=utcnow(),
    )
    session.commit()
    url = url_for("console.screen", token=issued.token, _external=True)
    return _hall_page(hall_id, issued={"name": issued.display.name, "url": url}, status=201)


@blp.post("/admin/halls/<int:hall_id>/displays/<int:display_id>/revoke")
@console_page(ADMIN_ROLE)
def admin_revoke_display(hall_id: int, display_id: int) -> Any:
    session = get_session()
    display = displays.get_for_hall(session, hall_id, display_id)
    displays.revoke(session, display, staff_id=current_principal().id, now=utcnow())
    session.commit()
    flash(f"大厅屏“{display.name}”已停用", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


# --- staff ------------------------------------------------------------------------------------


def _staff_rows() -> list[dict[str, Any]]:
    session = get_session()
    accounts, _total = staff_service.list_staff(session, limit=500)
    hall_names = {h.id: h.name for h in halls.list_halls(session)}
    departments = {d.id: d.name for d in session.scalars(select(Department))}
    now = utcnow()
    return [
        {
            "account": account,
            "locked": account.locked_until is not None and account.locked_until > now,
            "grants": [
                ROLE_TEXT[grant.role]
                + (
                    f"（{hall_names.get(grant.hall_id, '')}）"
                    if grant.hall_id
                    else f"（{departments.get(grant.department_id, '')}）"
                    if grant.department_id
                    else ""
                )
                for grant in account.grants
            ],
        }
        for account in accounts
    ]


def _staff_page(
    form: StaffForm | None = None,
    reset_form: PasswordResetForm | None = None,
    status: int = 200,
) -> Any:
    form = form or StaffForm()
    _scope_choices(form)
    return (
        render_template(
            "console/admin_staff.html",
            rows=_staff_rows(),
            form=form,
            reset_form=reset_form or PasswordResetForm(),
        ),
        status,
    )


@blp.get("/admin/staff")
@console_page(ADMIN_ROLE)
def admin_staff() -> Any:
    return _staff_page()


@blp.post("/admin/staff")
@console_page(ADMIN_ROLE)
def admin_create_staff() -> Any:
    form = StaffForm()
    _scope_choices(form)
    if not form.validate_on_submit():
        return _staff_page(form, status=422)
    session = get_session()
    grant = (form.role.data, form.hall_id.data or None, form.department_id.data or None)
    try:
        account = staff_service.create_staff(
            session,
            username=form.username.data or "",
            display_name=form.display_name.data or "",
            password=form.password.data or "",
            grants=[grant],
            actor=_actor(),
            now=utcnow(),
            request_id=_request_id(),
        )
    except DomainError as refused:
        session.rollback()
        field = {
            "USERNAME_TAKEN": "username",
            "USERNAME_INVALID": "username",
            "ROLE_SCOPE_INVALID": "role",
        }.get(refused.code)
        if field is None and isinstance(refused, ValidationFailed) and "密码" in refused.message:
            field = "password"
        _beside(form, refused, field or "display_name")
        return _staff_page(form, status=422)
    session.commit()
    flash(f"已创建账号 {account.username}", "success")
    return redirect(url_for("console.admin_staff"))


def _grant_text(grant: Any) -> str:
    session = get_session()
    if grant.hall_id:
        return f"{ROLE_TEXT[grant.role]}（{halls.get_hall(session, grant.hall_id).name}）"
    if grant.department_id:
        department = session.get(Department, grant.department_id)
        return f"{ROLE_TEXT[grant.role]}（{department.name if department else ''}）"
    return ROLE_TEXT[grant.role]


def _grants_page(staff_id: int, form: GrantsForm | None = None, status: int = 200) -> Any:
    account = staff_service.get_staff(get_session(), staff_id)
    form = form or GrantsForm(keep=[grant.id for grant in account.grants])
    form.keep.choices = _choices((grant.id, _grant_text(grant)) for grant in account.grants)
    _scope_choices(form)
    return render_template("console/admin_staff_roles.html", account=account, form=form), status


@blp.get("/admin/staff/<int:staff_id>")
@console_page(ADMIN_ROLE)
def admin_staff_roles(staff_id: int) -> Any:
    """One account's roles: untick to remove, or add one with its hall or department."""
    return _grants_page(staff_id)


@blp.post("/admin/staff/<int:staff_id>/roles")
@console_page(ADMIN_ROLE)
def admin_update_roles(staff_id: int) -> Any:
    session = get_session()
    account = staff_service.get_staff(session, staff_id)
    form = GrantsForm()
    form.keep.choices = _choices((grant.id, _grant_text(grant)) for grant in account.grants)
    _scope_choices(form)
    if not form.validate_on_submit():
        return _grants_page(staff_id, form, 422)
    kept = set(form.keep.data or [])
    grants = [
        (grant.role, grant.hall_id, grant.department_id)
        for grant in account.grants
        if grant.id in kept
    ]
    if form.role.data:
        grants.append((form.role.data, form.hall_id.data or None, form.department_id.data or None))
    try:
        staff_service.update_grants(
            session, account, grants, actor=_actor(), now=utcnow(), request_id=_request_id()
        )
    except DomainError as refused:
        session.rollback()
        _beside(form, refused, "role")
        return _grants_page(staff_id, form, 422)
    session.commit()
    flash(f"已更新 {account.username} 的角色，其登录已全部结束", "success")
    return redirect(url_for("console.admin_staff"))


def _staff_action(staff_id: int, done: str, action: Any) -> Any:
    session = get_session()
    account = staff_service.get_staff(session, staff_id)
    action(session, account)
    session.commit()
    flash(done.format(name=account.username), "success")
    return redirect(url_for("console.admin_staff"))


@blp.post("/admin/staff/<int:staff_id>/unlock")
@console_page(ADMIN_ROLE)
def admin_unlock_staff(staff_id: int) -> Any:
    return _staff_action(
        staff_id,
        "已解除 {name} 的锁定",
        lambda s, a: staff_service.unlock(
            s, a, actor=_actor(), now=utcnow(), request_id=_request_id()
        ),
    )


@blp.post("/admin/staff/<int:staff_id>/active")
@console_page(ADMIN_ROLE)
def admin_set_staff_active(staff_id: int) -> Any:
    active = request.form.get("active") == "1"
    return _staff_action(
        staff_id,
        "已启用 {name}" if active else "已停用 {name}，其登录已全部结束",
        lambda s, a: staff_service.set_active(
            s, a, active, actor=_actor(), now=utcnow(), request_id=_request_id()
        ),
    )


@blp.post("/admin/staff/<int:staff_id>/reset-password")
@console_page(ADMIN_ROLE)
def admin_reset_password(staff_id: int) -> Any:
    form = PasswordResetForm()
    if not form.validate_on_submit():
        return _staff_page(reset_form=form, status=422)
    session = get_session()
    account = staff_service.get_staff(session, staff_id)
    try:
        staff_service.reset_password(
            session,
            account,
            form.new_password.data or "",
            actor=_actor(),
            now=utcnow(),
            request_id=_request_id(),
        )
    except ValidationFailed as refused:
        session.rollback()
        _beside(form, refused, "new_password")
        return _staff_page(reset_form=form, status=422)
    session.commit()
    flash(f"已重置 {account.username} 的密码，其登录已全部结束", "success")
    return redirect(url_for("console.admin_staff"))


# --- seals ------------------------------------------------------------------------------------


@blp.get("/admin/seals")
@console_page(ADMIN_ROLE)
def admin_seals(form: SealStatusForm | None = None, status: int = 200) -> Any:
    session = get_session()
    departments = {d.id: d.name for d in session.scalars(select(Department))}
    rows = [
        {
            "seal": seal,
            "department": departments.get(seal.department_id, ""),
            "status": SEAL_STATUS_TEXT.get(str(seal.status), str(seal.status)),
        }
        for seal in list_seals(session)
    ]
    return (
        render_template("console/admin_seals.html", rows=rows, form=form or SealStatusForm()),
        status,
    )


SEAL_ACTIONS = {
    "suspend": (SealStatus.SUSPENDED, "已停用"),
    "reactivate": (SealStatus.ACTIVE, "已启用"),
    "revoke": (SealStatus.REVOKED, "已注销"),
}


@blp.post("/admin/seals/<int:seal_id>/<string:action>")
@console_page(ADMIN_ROLE)
def admin_seal_status(seal_id: int, action: str) -> Any:
    if action not in SEAL_ACTIONS:
        return render_template("console/error.html", status=404, message="未知的操作"), 404
    form = SealStatusForm()
    if not form.validate_on_submit():
        return admin_seals(form, 422)
    if not form.confirmed.data:
        form.confirmed.errors = ["请勾选确认后再操作"]
        return admin_seals(form, 422)
    session = get_session()
    seal = session.get(Seal, seal_id)
    if seal is None:
        return render_template("console/error.html", status=404, message="印章不存在"), 404
    status, done = SEAL_ACTIONS[action]
    change_seal_status(
        session,
        get_seal_context(),
        seal,
        status,
        actor=_actor(),
        now=utcnow(),
        reason=(form.reason.data or "").strip(),
    )
    session.commit()
    flash(f"印章“{seal.name}”{done}", "success")
    return redirect(url_for("console.admin_seals"))

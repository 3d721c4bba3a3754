"""Admin pages: halls (windows, categories, hall screens' display tokens), staff accounts and
their roles, seals and whom they are authorised for.

Every change goes through the service the API calls, with the admin as the audited actor;
refusals of a service (a taken username, a weak password, a role without its scope, a window
number in use) are shown beside the field they concern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import DomainError, ValidationFailed
from app.halls import service as halls
from app.halls.errors import CategoryNotFound, WindowNotFound
from app.halls.models import ServiceCategory, Window, WindowStatus
from app.identity import staff as staff_service
from app.identity.models import StaffAccount, StaffRole
from app.identity.principals import staff_roles_and_scopes
from app.matters.models import Matter
from app.organisation.models import Department, Hall
from app.queueing import displays
from app.queueing import windows as window_service
from app.seals import get_seal_context
from app.seals.lifecycle import SealActor, change_seal_status, list_seals, may_apply
from app.seals.models import Seal, SealStatus
from app.seals.templates import template_catalogue
from blueprints.authz import ADMIN_ROLE, current_principal
from blueprints.console import blp
from blueprints.console.access import console_page
from blueprints.console.forms import CheckboxesField, choices, show_beside

ROLE_TEXT = {
    StaffRole.WINDOW_CLERK: "窗口人员",
    StaffRole.HALL_MANAGER: "大厅主管",
    StaffRole.REVIEWER: "审查人员",
    StaffRole.POLICY_OFFICER: "政策专员",
    StaffRole.ADMIN: "系统管理员",
}
ROLE_BY_VALUE = {role.value: text for role, text in ROLE_TEXT.items()}
SEAL_STATUS_TEXT = {"active": "使用中", "suspended": "已停用", "revoked": "已注销"}
WINDOW_STATUS_TEXT = {
    WindowStatus.OPEN: ("开放", "ok"),
    WindowStatus.PAUSED: ("暂停", "warn"),
    WindowStatus.CLOSED: ("关闭", ""),
}


def _actor() -> Actor:
    return Actor("staff", current_principal().id)


def _request_id() -> str | None:
    return g.get("request_id")


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


class CategoryEditForm(CategoryForm):
    active = BooleanField("启用（停用后不再出号）")


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


class StaffFilterForm(FlaskForm):
    """The staff list's filters, read from the query string (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    role = SelectField("角色", validate_choice=False)
    hall_id = SelectField("大厅", coerce=int, validate_choice=False)
    department_id = SelectField("部门", coerce=int, validate_choice=False)
    active = SelectField(
        "状态",
        choices=choices([("", "全部"), ("1", "启用"), ("0", "已停用")]),
        validate_choice=False,
    )


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


def _scope_choices(form: StaffForm | GrantsForm | StaffFilterForm, blank_role: str = "") -> None:
    session = get_session()
    form.role.choices = choices((role.value, ROLE_TEXT[role]) for role in StaffRole)
    if blank_role:
        form.role.choices = choices([("", blank_role)]) + form.role.choices
    form.hall_id.choices = choices(
        [(0, "—")] + [(h.id, h.name) for h in session.scalars(select(Hall).order_by(Hall.id))]
    )
    form.department_id.choices = choices(
        [(0, "—")]
        + [(d.id, d.name) for d in session.scalars(select(Department).order_by(Department.id))]
    )


def _attempt(form: FlaskForm, default_field: str, change: Callable[[Session], Any]) -> bool:
    """Run a service change; on refusal roll back and show it beside the field. True if done
    (and committed)."""
    session = get_session()
    try:
        change(session)
    except DomainError as refused:
        session.rollback()
        show_beside(form, refused, default_field)
        return False
    session.commit()
    return True


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
    session = get_session()
    rows = [
        {
            "hall": hall,
            "windows": len(halls.list_windows(session, hall.id)),
            "categories": len(halls.list_categories(session, hall.id)),
        }
        for hall in halls.list_halls(session)
    ]
    return render_template("console/admin_halls.html", rows=rows)


def _window_row(window: Window) -> dict[str, Any]:
    status_text, tag = WINDOW_STATUS_TEXT[WindowStatus(window.status)]
    return {
        "window": window,
        "name": window.label or f"{window.number}号窗口",
        "categories": "、".join(c.name for c in window.categories) or "—",
        "status": status_text,
        "tag": tag,
    }


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
    window_form.category_ids.choices = choices((c.id, c.name) for c in categories)
    return (
        render_template(
            "console/admin_hall.html",
            hall=hall,
            categories=categories,
            windows=[_window_row(w) for w in halls.list_windows(session, hall_id)],
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
    values = {
        "name": (form.name.data or "").strip(),
        "prefix": form.prefix.data,
        "daily_cap": form.daily_cap.data,
        "typical_minutes": float(form.typical_minutes.data or 10),
    }
    if not _attempt(form, "prefix", lambda s: halls.create_category(s, hall_id, values)):
        return _hall_page(hall_id, category_form=form, status=422)
    flash("业务类别已添加", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


def _hall_category(hall_id: int, category_id: int) -> ServiceCategory:
    category = halls.get_category(get_session(), category_id)
    if category.hall_id != hall_id:
        raise CategoryNotFound(category_id=category_id)
    return category


def _category_page(
    hall: Hall, category: ServiceCategory, form: CategoryEditForm, status: int
) -> Any:
    return (
        render_template(
            "console/admin_edit.html",
            hall=hall,
            title=f"业务类别“{category.name}”",
            form=form,
            fields=["name", "prefix", "daily_cap", "typical_minutes", "active"],
            action=url_for("console.admin_category", hall_id=hall.id, category_id=category.id),
            submit="保存业务类别",
        ),
        status,
    )


@blp.route("/admin/halls/<int:hall_id>/categories/<int:category_id>", methods=["GET", "POST"])
@console_page(ADMIN_ROLE)
def admin_category(hall_id: int, category_id: int) -> Any:
    """Change a category: name, letter, daily cap, typical time, or stop it issuing numbers."""
    hall = halls.get_hall(get_session(), hall_id)
    category = _hall_category(hall_id, category_id)
    if request.method == "GET":
        form = CategoryEditForm(obj=category)
        form.typical_minutes.data = round(category.typical_minutes)
        return _category_page(hall, category, form, 200)
    form = CategoryEditForm()
    if not form.validate_on_submit():
        return _category_page(hall, category, form, 422)
    values = {
        "name": (form.name.data or "").strip(),
        "prefix": form.prefix.data,
        "daily_cap": form.daily_cap.data,
        "typical_minutes": float(form.typical_minutes.data or 10),
        "active": bool(form.active.data),
    }
    if not _attempt(form, "prefix", lambda s: halls.update_category(s, category, values)):
        return _category_page(hall, category, form, 422)
    flash(f"业务类别“{category.name}”已保存", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


@blp.post("/admin/halls/<int:hall_id>/windows")
@console_page(ADMIN_ROLE)
def admin_add_window(hall_id: int) -> Any:
    form = WindowForm()
    form.category_ids.choices = choices(
        (c.id, c.name) for c in halls.list_categories(get_session(), hall_id)
    )
    if not form.validate_on_submit():
        return _hall_page(hall_id, window_form=form, status=422)

    def create(session: Session) -> Window:
        return halls.create_window(
            session,
            hall_id,
            number=int(form.number.data or 0),
            label=(form.label.data or "").strip() or None,
            category_ids=form.category_ids.data or [],
        )

    if not _attempt(form, "number", create):
        return _hall_page(hall_id, window_form=form, status=422)
    flash("窗口已添加", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


def _hall_window(hall_id: int, window_id: int) -> Window:
    window = halls.get_window(get_session(), window_id)
    if window.hall_id != hall_id:
        raise WindowNotFound(window_id=window_id)
    return window


def _window_page(hall: Hall, window: Window, form: WindowForm, status: int) -> Any:
    form.category_ids.choices = choices(
        (c.id, c.name) for c in halls.list_categories(get_session(), hall.id)
    )
    row = _window_row(window)
    return (
        render_template(
            "console/admin_edit.html",
            hall=hall,
            title=row["name"],
            form=form,
            fields=["number", "label", "category_ids"],
            action=url_for("console.admin_window", hall_id=hall.id, window_id=window.id),
            submit="保存窗口",
            window=row,
        ),
        status,
    )


@blp.route("/admin/halls/<int:hall_id>/windows/<int:window_id>", methods=["GET", "POST"])
@console_page(ADMIN_ROLE)
def admin_window(hall_id: int, window_id: int) -> Any:
    """Change a window's number, name or the categories it serves."""
    hall = halls.get_hall(get_session(), hall_id)
    window = _hall_window(hall_id, window_id)
    if request.method == "GET":
        form = WindowForm(obj=window, category_ids=[c.id for c in window.categories])
        return _window_page(hall, window, form, 200)
    form = WindowForm()
    form.category_ids.choices = choices(
        (c.id, c.name) for c in halls.list_categories(get_session(), hall_id)
    )
    if not form.validate_on_submit():
        return _window_page(hall, window, form, 422)
    values = {
        "number": int(form.number.data or 0),
        "label": (form.label.data or "").strip() or None,
        "category_ids": form.category_ids.data or [],
    }
    if not _attempt(form, "number", lambda s: halls.update_window(s, window, values)):
        return _window_page(hall, window, form, 422)
    flash(f"{_window_row(window)['name']}已保存", "success")
    return redirect(url_for("console.admin_hall", hall_id=hall_id))


@blp.post("/admin/halls/<int:hall_id>/windows/<int:window_id>/close")
@console_page(ADMIN_ROLE)
def admin_close_window(hall_id: int, window_id: int) -> Any:
    """Take a window out of service now: the terminal's own close, refused while a number is
    still at its counter."""
    window = _hall_window(hall_id, window_id)
    session = get_session()
    window_service.set_window_status(
        session, window, WindowStatus.CLOSED, clerk_id=current_principal().id, now=utcnow()
    )
    session.commit()
    flash(f"{_window_row(window)['name']}已关闭", "success")
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


def _grant_texts(accounts: list[StaffAccount]) -> dict[int, str]:
    """Each grant as people read it: the role and its hall or department."""
    session = get_session()
    hall_names = {h.id: h.name for h in halls.list_halls(session)}
    departments = {d.id: d.name for d in session.scalars(select(Department))}
    texts = {}
    for account in accounts:
        for grant in account.grants:
            scope = (
                hall_names.get(grant.hall_id or 0)
                or departments.get(grant.department_id or 0)
                or ""
            )
            texts[grant.id] = ROLE_TEXT[grant.role] + (f"（{scope}）" if scope else "")
    return texts


def _status_of(account: StaffAccount) -> tuple[str, str]:
    if not account.active:
        return "已停用", ""
    if account.locked_until is not None and account.locked_until > utcnow():
        return "已锁定", "danger"
    return "正常", "ok"


def _filters() -> tuple[StaffFilterForm, dict[str, Any]]:
    """The list's filters as `list_staff` takes them (as the API's query arguments)."""
    form = StaffFilterForm(formdata=request.args)
    _scope_choices(form, blank_role="全部")
    form.hall_id.choices[0] = SelectChoice(0, "全部")
    form.department_id.choices[0] = SelectChoice(0, "全部")
    filters: dict[str, Any] = {}
    try:
        if form.role.data:
            filters["role"] = StaffRole(form.role.data)
    except ValueError:
        form.role.errors = ["未知的角色"]
    if form.hall_id.data:
        filters["hall_id"] = form.hall_id.data
    if form.department_id.data:
        filters["department_id"] = form.department_id.data
    if form.active.data in ("0", "1"):
        filters["active"] = form.active.data == "1"
    return form, filters


@blp.get("/admin/staff")
@console_page(ADMIN_ROLE)
def admin_staff() -> Any:
    form, filters = _filters()
    accounts, total = staff_service.list_staff(get_session(), limit=500, **filters)
    texts = _grant_texts(accounts)
    rows = [
        {
            "account": account,
            "grants": "；".join(texts[grant.id] for grant in account.grants),
            "status": _status_of(account),
        }
        for account in accounts
    ]
    return render_template(
        "console/admin_staff.html", rows=rows, total=total, filter_form=form, filtered=filters
    )


def _new_staff_page(form: StaffForm, status: int = 200) -> Any:
    _scope_choices(form)
    return render_template("console/admin_staff_new.html", form=form), status


@blp.get("/admin/staff/new")
@console_page(ADMIN_ROLE)
def admin_new_staff() -> Any:
    return _new_staff_page(StaffForm())


STAFF_FIELDS = {
    "USERNAME_TAKEN": "username",
    "USERNAME_INVALID": "username",
    "ROLE_SCOPE_INVALID": "role",
    "ROLES_REQUIRED": "role",
}


@blp.post("/admin/staff")
@console_page(ADMIN_ROLE)
def admin_create_staff() -> Any:
    form = StaffForm()
    _scope_choices(form)
    if not form.validate_on_submit():
        return _new_staff_page(form, 422)
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
        field = STAFF_FIELDS.get(refused.code)
        # The password policy's refusal names no field; it is the only one that speaks of it.
        if field is None and isinstance(refused, ValidationFailed) and "密码" in refused.message:
            field = "password"
        show_beside(form, refused, field or "display_name")
        return _new_staff_page(form, 422)
    session.commit()
    flash(f"已创建账号 {account.username}", "success")
    return redirect(url_for("console.admin_staff_account", staff_id=account.id))


def _account_page(
    staff_id: int,
    *,
    grants_form: GrantsForm | None = None,
    reset_form: PasswordResetForm | None = None,
    status: int = 200,
) -> Any:
    account = staff_service.get_staff(get_session(), staff_id)
    texts = _grant_texts([account])
    grants_form = grants_form or GrantsForm(keep=[grant.id for grant in account.grants])
    grants_form.keep.choices = choices((grant.id, texts[grant.id]) for grant in account.grants)
    _scope_choices(grants_form, blank_role="—")
    status_text, tag = _status_of(account)
    return (
        render_template(
            "console/admin_staff_account.html",
            account=account,
            status_text=status_text,
            status_tag=tag,
            locked=status_text == "已锁定",
            grants_form=grants_form,
            reset_form=reset_form or PasswordResetForm(),
        ),
        status,
    )


@blp.get("/admin/staff/<int:staff_id>")
@console_page(ADMIN_ROLE)
def admin_staff_account(staff_id: int) -> Any:
    """One account: its roles (untick to remove, or add one), password, lock and state."""
    return _account_page(staff_id)


@blp.post("/admin/staff/<int:staff_id>/roles")
@console_page(ADMIN_ROLE)
def admin_update_roles(staff_id: int) -> Any:
    session = get_session()
    account = staff_service.get_staff(session, staff_id)
    form = GrantsForm()
    form.keep.choices = choices((grant.id, "") for grant in account.grants)
    _scope_choices(form, blank_role="—")
    if not form.validate_on_submit():
        return _account_page(staff_id, grants_form=form, status=422)
    kept = set(form.keep.data or [])
    grants = [
        (grant.role, grant.hall_id, grant.department_id)
        for grant in account.grants
        if grant.id in kept
    ]
    if form.role.data:
        grants.append((form.role.data, form.hall_id.data or None, form.department_id.data or None))
    done = _attempt(
        form,
        "role",
        lambda s: staff_service.update_grants(
            s, account, grants, actor=_actor(), now=utcnow(), request_id=_request_id()
        ),
    )
    if not done:
        return _account_page(staff_id, grants_form=form, status=422)
    flash(f"已更新 {account.username} 的角色，其登录已全部结束", "success")
    return redirect(url_for("console.admin_staff_account", staff_id=staff_id))


def _staff_action(staff_id: int, done: str, action: Callable[[Session, StaffAccount], Any]) -> Any:
    """An account action without input; a refusal (deactivating oneself, the last admin)
    comes back as a message on the account's page."""
    session = get_session()
    account = staff_service.get_staff(session, staff_id)
    try:
        action(session, account)
    except DomainError as refused:
        session.rollback()
        flash(refused.message, "error")
    else:
        session.commit()
        flash(done.format(name=account.username), "success")
    return redirect(url_for("console.admin_staff_account", staff_id=staff_id))


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
    """The API's reset: the admin sets the new password (told to the person, who then changes
    it); the account is unlocked and its logins end."""
    form = PasswordResetForm()
    if not form.validate_on_submit():
        return _account_page(staff_id, reset_form=form, status=422)
    account = staff_service.get_staff(get_session(), staff_id)
    done = _attempt(
        form,
        "new_password",
        lambda s: staff_service.reset_password(
            s,
            account,
            form.new_password.data or "",
            actor=_actor(),
            now=utcnow(),
            request_id=_request_id(),
        ),
    )
    if not done:
        return _account_page(staff_id, reset_form=form, status=422)
    flash(f"已重置 {account.username} 的密码，其登录已全部结束", "success")
    return redirect(url_for("console.admin_staff_account", staff_id=staff_id))


# --- seals ------------------------------------------------------------------------------------


def _holders(session: Session, seals: list[Seal]) -> dict[int, list[str]]:
    """Per seal, who the seal service would let apply it: active staff (by role and department)
    and the system for rule-based approvals."""
    accounts, _total = staff_service.list_staff(session, active=True, limit=1000)
    actors = [
        (account, SealActor("staff", account.id, *staff_roles_and_scopes(session, account.id)))
        for account in accounts
    ]
    system = SealActor("system")
    return {
        seal.id: [
            f"{account.display_name}（{account.username}）"
            for account, actor in actors
            if may_apply(seal, actor)
        ]
        + (["系统（规则秒批）"] if may_apply(seal, system) else [])
        for seal in seals
    }


def _seal_rows(failed: SealStatusForm | None, failed_id: int) -> list[dict[str, Any]]:
    session = get_session()
    seals = list_seals(session)
    departments = {d.id: d.name for d in session.scalars(select(Department))}
    titles = {t.key: t.title for t in template_catalogue()}
    codes = {code for seal in seals for code in seal.authorised_matters}
    matters = {
        code: name
        for code, name in session.execute(
            select(Matter.code, Matter.name).where(Matter.code.in_(codes))
        )
    }
    holders = _holders(session, seals)
    return [
        {
            "seal": seal,
            "department": departments.get(seal.department_id, ""),
            "status": SEAL_STATUS_TEXT.get(str(seal.status), str(seal.status)),
            "tag": {"active": "ok", "suspended": "warn"}.get(str(seal.status), "danger"),
            "roles": "、".join(ROLE_BY_VALUE.get(r, r) for r in seal.authorised_roles) or "—",
            "templates": [titles.get(key, key) for key in seal.authorised_templates],
            # The catalogue's name where the code is a matter's, the template's title where the
            # seal lists a template key among its matters (as the demo seals do).
            "matters": list(
                dict.fromkeys(
                    matters.get(code) or titles.get(code, code) for code in seal.authorised_matters
                )
            ),
            "holders": holders[seal.id],
            # A refused form keeps its errors under its own seal only.
            "form": failed if failed is not None and seal.id == failed_id else SealStatusForm(),
        }
        for seal in seals
    ]


@blp.get("/admin/seals")
@console_page(ADMIN_ROLE)
def admin_seals() -> Any:
    return _seals_page()


def _seals_page(failed: SealStatusForm | None = None, seal_id: int = 0, status: int = 200) -> Any:
    return render_template("console/admin_seals.html", rows=_seal_rows(failed, seal_id)), status


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
        return _seals_page(form, seal_id, 422)
    if not form.confirmed.data:
        form.confirmed.errors = ["请勾选确认后再操作"]
        return _seals_page(form, seal_id, 422)
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

"""Console login: username and password (the staff lockout applies), scan login with the
mini-program, logout, and the staff member's own page where a WeChat account is linked."""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.extensions import limiter
from app.identity import scan_login
from app.identity import staff as staff_service
from app.identity.errors import AccountDisabled, AccountLocked, LoginFailed
from app.identity.models import ConsoleChallengePurpose, StaffAccount
from blueprints.authz import current_principal
from blueprints.console import blp
from blueprints.console.access import (
    STAFF_KEY,
    console_page,
    console_public,
    safe_next,
    sign_in,
    sign_out,
)
from blueprints.console.rendering import qr_data_uri
from blueprints.logins import keeping_writes, login_rate

SCAN_KEY = "scan_challenge"
LINK_KEY = "link_challenge"


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=256)])


def _new_challenge(purpose: ConsoleChallengePurpose, staff_id: int | None = None) -> str:
    """A fresh QR challenge whose id this browser's session holds; returns the QR payload."""
    challenge, code = scan_login.create_challenge(
        get_session(),
        purpose,
        now=utcnow(),
        ttl_seconds=int(current_app.config["CONSOLE_SCAN_TTL_SECONDS"]),
        staff_id=staff_id,
    )
    session[SCAN_KEY if purpose == ConsoleChallengePurpose.LOGIN else LINK_KEY] = challenge.id
    return scan_login.qr_payload(code)


def _login_page(form: LoginForm, status: int = 200) -> tuple[str, int]:
    payload = _new_challenge(ConsoleChallengePurpose.LOGIN)
    get_session().commit()
    return (
        render_template(
            "console/login.html",
            form=form,
            scan_qr=qr_data_uri(payload),
            scan_ttl=int(current_app.config["CONSOLE_SCAN_TTL_SECONDS"]),
            next=safe_next(request.values.get("next")),
        ),
        status,
    )


@blp.get("/login")
@console_public
def login() -> Any:
    """The login page: a password form beside a scan-login QR."""
    if session.get(STAFF_KEY):
        return redirect(safe_next(request.args.get("next")))
    return _login_page(LoginForm())


@blp.post("/login")
@limiter.limit(login_rate)
@console_public
def login_submit() -> Any:
    form = LoginForm()
    if not form.validate_on_submit():
        return _login_page(form, 422)
    db = get_session()
    settings = current_app.config
    try:
        with keeping_writes(db):
            account = staff_service.authenticate(
                db,
                form.username.data or "",
                form.password.data or "",
                now=utcnow(),
                max_failures=int(settings["STAFF_MAX_FAILED_LOGINS"]),
                lockout_minutes=int(settings["STAFF_LOCKOUT_MINUTES"]),
                request_id=g.get("request_id"),
            )
    except (LoginFailed, AccountLocked, AccountDisabled) as refused:
        form.form_errors.append(refused.message)
        return _login_page(form, refused.status)
    sign_in(account)
    db.commit()
    return redirect(safe_next(request.values.get("next")))


@blp.get("/login/scan")
@console_public
def login_scan_status() -> Response:
    """Polled by the login page: pending, expired, or (once) logged in with where to go."""
    challenge_id: str | None = session.get(SCAN_KEY)
    db = get_session()
    now = utcnow()
    state = scan_login.status(db, challenge_id, now=now) if challenge_id else scan_login.EXPIRED
    if challenge_id and state == scan_login.CONFIRMED:
        staff_id = scan_login.consume_login(db, challenge_id, now=now)
        account = db.get(StaffAccount, staff_id) if staff_id else None
        if account is not None and account.active:
            sign_in(account)
            db.commit()
            return jsonify(status="logged_in", redirect=safe_next(request.args.get("next")))
        db.commit()
        state = scan_login.EXPIRED
    return jsonify(status=state)


@blp.post("/logout")
@console_public
def logout() -> Any:
    sign_out()
    get_session().commit()
    flash("已退出登录", "info")
    return redirect(url_for("console.login"))


@blp.get("/account")
@console_page()
def account() -> str:
    """The staff member's own page: roles, and the WeChat account that confirms scan logins."""
    db = get_session()
    staff = staff_service.get_staff(db, current_principal().id)
    link_qr = None
    if staff.wechat_user_id is None:
        link_qr = qr_data_uri(_new_challenge(ConsoleChallengePurpose.LINK, staff.id))
        db.commit()
    return render_template("console/account.html", staff=staff, link_qr=link_qr)


@blp.get("/account/link")
@console_page()
def account_link_status() -> Response:
    """Polled by the account page while its link QR is shown."""
    challenge_id = session.get(LINK_KEY)
    state = (
        scan_login.status(get_session(), challenge_id, now=utcnow())
        if challenge_id
        else scan_login.EXPIRED
    )
    return jsonify(status=state)


@blp.post("/account/unlink")
@console_page()
def account_unlink() -> Any:
    db = get_session()
    staff = staff_service.get_staff(db, current_principal().id)
    scan_login.unlink(db, staff, now=utcnow(), actor=Actor("staff", staff.id))
    db.commit()
    flash("已解除微信绑定，扫码登录不再可用", "info")
    return redirect(url_for("console.account"))

"""The window terminal: a clerk's own window, its current ticket and the queue actions.

Each action is an htmx POST answered with the re-rendered desk (window status, current ticket,
waiting counts), so the page shows what the database now says. The views call the services the
terminal API calls, through the API's own glue (`blueprints.queueing.terminal`): a window of
another hall is refused by the same `require_hall_staff`.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, abort, render_template, request
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.appointments import checkin
from app.calendar import local_day
from app.db import get_session, utcnow
from app.errors import ValidationFailed
from app.halls import service as halls
from app.halls.models import Window, WindowStatus
from app.identity.models import User
from app.identity.realname import masked_identity
from app.matters.models import Matter
from app.queueing import runtime, windows
from app.queueing.board import board, window_name
from app.queueing.models import Ticket, TicketStatus
from app.security import get_cipher
from blueprints.appointments.routes import rules as appointment_rules
from blueprints.authz import ADMIN_ROLE, current_principal
from blueprints.console import blp
from blueprints.console.access import console_page
from blueprints.queueing.shared import HALL_STAFF, current_actor
from blueprints.queueing.terminal import (
    call_next_once,
    citizen_card,
    clerk_window,
    publish_call,
    scanned_code,
    take_for_scanned,
)

STATUS_TEXT = {
    WindowStatus.OPEN: "已开窗",
    WindowStatus.PAUSED: "已暂停",
    WindowStatus.CLOSED: "已关窗",
}
TICKET_TEXT = {
    TicketStatus.CALLED: "已叫号",
    TicketStatus.SERVING: "办理中",
    TicketStatus.HELD: "挂起",
}
# The buttons of a ticket at the window, by its status: (action, label, shortcut key).
ACTIONS_BY_STATUS: dict[TicketStatus, list[tuple[str, str, str]]] = {
    TicketStatus.CALLED: [
        ("recall", "重呼", "F2"),
        ("serve", "开始办理", "F3"),
        ("no_show", "过号", "F6"),
    ],
    TicketStatus.SERVING: [("hold", "挂起", "F7")],
    TicketStatus.HELD: [("resume", "恢复办理", "F8")],
}
WINDOW_TICKET_STATUSES = tuple(ACTIONS_BY_STATUS)
AT_COUNTER = (TicketStatus.CALLED, TicketStatus.SERVING)


def _optional_int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


CHOICE_MESSAGES = {
    "invalid_choice_message": "请从列表中选择",
    "invalid_value_message": "请从列表中选择",
}


class ScanForm(FlaskForm):
    """What a keyboard-wedge scanner (or the camera) typed: a personal code or 红棉码."""

    code = StringField(
        "个人码",
        validators=[DataRequired("请扫描或输入个人码"), Length(max=2048, message="个人码过长")],
    )


class TakeForm(FlaskForm):
    code = HiddenField(validators=[DataRequired("请重新扫码"), Length(max=2048)])
    category_id = SelectField("业务类别", coerce=int, **CHOICE_MESSAGES)


class CheckInForm(FlaskForm):
    code = HiddenField(validators=[DataRequired("请重新扫码"), Length(max=2048)])


class FinishForm(FlaskForm):
    matter = StringField(
        "办理事项", validators=[Optional(), Length(max=128, message="办理事项最多 128 字")]
    )


class TransferForm(FlaskForm):
    category_id = SelectField("转往业务", coerce=_optional_int, **CHOICE_MESSAGES)
    window_id = SelectField("转往窗口", coerce=_optional_int, **CHOICE_MESSAGES)

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.category_id.data is None and self.window_id.data is None:
            self.category_id.errors = ["请选择转往的业务或窗口"]
            return False
        return True


def _transfer_form(window: Window, formdata: Any = None) -> TransferForm:
    """Another category of the hall, and/or a window of the hall (not this one, nor a closed
    one: the transfer would be refused)."""
    session = get_session()
    form = TransferForm(formdata=formdata)
    form.category_id.choices = [("", "（原业务）")] + [
        (c.id, f"{c.prefix} · {c.name}")
        for c in halls.list_categories(session, window.hall_id, active_only=True)
    ]
    form.window_id.choices = [("", "（任一窗口）")] + [
        (w.id, window_name(w))
        for w in halls.list_windows(session, window.hall_id)
        if w.id != window.id and w.status != WindowStatus.CLOSED
    ]
    return form


def _take_form(window: Window, code: str | None = None, formdata: Any = None) -> TakeForm:
    form = TakeForm(formdata=formdata)
    if code is not None:
        form.code.data = code
    form.category_id.choices = [
        (c.id, f"{c.prefix} · {c.name}")
        for c in halls.list_categories(get_session(), window.hall_id, active_only=True)
    ]
    return form


def _my_halls() -> list[Any]:
    """The halls whose windows the signed-in staff member may work (all, for the unscoped)."""
    principal = current_principal()
    session = get_session()
    everywhere = principal.has_role(ADMIN_ROLE) or any(
        role in principal.roles and role not in principal.scopes for role in HALL_STAFF
    )
    if everywhere:
        return list(halls.list_halls(session))
    ids = sorted({i for role in HALL_STAFF for i in principal.scopes.get(role, [])})
    return [halls.get_hall(session, hall_id) for hall_id in ids]


def _tickets_at(window: Window) -> list[Ticket]:
    """Today's tickets holding this window: called, being served or held."""
    return list(
        get_session().scalars(
            select(Ticket)
            .where(
                Ticket.window_id == window.id,
                Ticket.service_day == local_day(utcnow()),
                Ticket.status.in_(WINDOW_TICKET_STATUSES),
            )
            .order_by(Ticket.id)
        )
    )


def _citizen_of(ticket: Ticket) -> str:
    """Who holds the ticket, masked (an anonymous walk-in has no name here)."""
    if ticket.user_id is None:
        return "未实名取号"
    user = get_session().get(User, ticket.user_id)
    identity = masked_identity(get_cipher(), user) if user else {}
    return str(identity.get("name") or "未实名")


def _waiting_counts(window: Window) -> list[dict[str, Any]]:
    """Waiting tickets per category of the hall, as the hall screen counts them; the
    categories this window serves are marked."""
    served = {category.id for category in window.categories}
    return [
        {**category, "mine": category["id"] in served}
        for category in board(get_session(), window.hall_id, now=utcnow())["categories"]
    ]


def _matters() -> list[str]:
    """What a finished ticket can record as handled: the catalogue's matter names."""
    return list(get_session().scalars(select(Matter.name).order_by(Matter.name)))


def _ticket_view(window: Window, ticket: Ticket, refused: dict[str, Any]) -> dict[str, Any]:
    finish = refused.get("finish") if refused.get("ticket_id") == ticket.id else None
    transfer = refused.get("transfer") if refused.get("ticket_id") == ticket.id else None
    if finish is None:
        finish = FinishForm(formdata=None)
    if transfer is None:
        transfer = _transfer_form(window, formdata=None)
    return {
        "id": ticket.id,
        "display": ticket.display,
        "version": ticket.version,
        "status": TICKET_TEXT[ticket.status],
        "status_tag": "warn" if ticket.status == TicketStatus.HELD else "ok",
        "category": halls.get_category(get_session(), ticket.category_id).name,
        "citizen": _citizen_of(ticket),
        "actions": ACTIONS_BY_STATUS[ticket.status],
        "finish_form": finish if ticket.status == TicketStatus.SERVING else None,
        "transfer_form": transfer if ticket.status in AT_COUNTER else None,
    }


def _desk(window: Window, refused: dict[str, Any] | None = None) -> dict[str, Any]:
    tickets = [_ticket_view(window, ticket, refused or {}) for ticket in _tickets_at(window)]
    return {
        "window": window,
        "window_name": window_name(window),
        "status": window.status,
        "status_text": STATUS_TEXT[window.status],
        "tickets": tickets,
        "busy": any(t["status"] != TICKET_TEXT[TicketStatus.HELD] for t in tickets),
        "waiting": _waiting_counts(window),
        "matters": _matters(),
        # Names the next click on 叫下一位: a resend of that click calls no one else.
        "call_key": uuid.uuid4().hex,
        "statuses": [
            (WindowStatus.OPEN, "开窗"),
            (WindowStatus.PAUSED, "暂停"),
            (WindowStatus.CLOSED, "关窗"),
        ],
    }


def _render_desk(window: Window, message: str | None = None) -> str:
    return render_template("console/terminal_desk.html", message=message, **_desk(window))


def _refused_desk(window: Window, ticket_id: int, **forms: FlaskForm) -> Response:
    """The desk again, the refused form showing its errors beside its fields."""
    body = render_template(
        "console/terminal_desk.html",
        message=None,
        **_desk(window, {"ticket_id": ticket_id, **forms}),
    )
    return Response(body, status=422, mimetype="text/html")


@blp.get("/terminal")
@console_page(*HALL_STAFF)
def terminal() -> str:
    """Choose the window to work at."""
    session = get_session()
    choices = [
        {
            "hall": hall,
            "windows": [
                {"id": w.id, "name": window_name(w), "status": STATUS_TEXT[w.status]}
                for w in halls.list_windows(session, hall.id)
            ],
        }
        for hall in _my_halls()
    ]
    return render_template("console/terminal_pick.html", choices=choices)


@blp.get("/terminal/windows/<int:window_id>")
@console_page(*HALL_STAFF)
def terminal_window(window_id: int) -> str:
    window = clerk_window(window_id)
    hall = halls.get_hall(get_session(), window.hall_id)
    return render_template(
        "console/terminal.html", hall=hall, scan_form=ScanForm(formdata=None), **_desk(window)
    )


@blp.get("/terminal/windows/<int:window_id>/waiting")
@console_page(*HALL_STAFF)
def terminal_waiting(window_id: int) -> str:
    """The waiting counts alone (polled every few seconds)."""
    window = clerk_window(window_id)
    return render_template(
        "console/terminal_waiting.html", window=window, waiting=_waiting_counts(window)
    )


@blp.post("/terminal/windows/<int:window_id>/status")
@console_page(*HALL_STAFF)
def terminal_status(window_id: int) -> str:
    try:
        status = WindowStatus(request.form.get("status", ""))
    except ValueError:
        raise ValidationFailed("未知的窗口状态", field="status") from None
    session = get_session()
    window = windows.set_window_status(
        session, clerk_window(window_id), status, clerk_id=current_principal().id, now=utcnow()
    )
    session.commit()
    return _render_desk(window, STATUS_TEXT[status])


@blp.post("/terminal/windows/<int:window_id>/call-next")
@console_page(*HALL_STAFF)
def terminal_call_next(window_id: int) -> str:
    window = clerk_window(window_id)
    ticket = call_next_once(window)
    get_session().commit()
    return _render_desk(window, f"已叫 {ticket.display} 号")


def _int_field(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed("请选择有效的选项", field=name)
    return int(raw)


ACTION_NAMES: dict[str, windows.ActionName] = {
    "recall": "recall",
    "no_show": "no_show",
    "serve": "serve",
    "hold": "hold",
    "resume": "resume",
    "finish": "finish",
    "transfer": "transfer",
}


@blp.post("/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/<string:action>")
@console_page(*HALL_STAFF)
def terminal_ticket_action(window_id: int, ticket_id: int, action: str) -> Any:
    name = ACTION_NAMES.get(action)
    if name is None:
        abort(404)
    session = get_session()
    window = clerk_window(window_id)
    matter = category_id = target_window_id = None
    if name == "finish":
        finish = FinishForm()
        if not finish.validate_on_submit():
            return _refused_desk(window, ticket_id, finish=finish)
        matter = (finish.matter.data or "").strip() or None
    elif name == "transfer":
        transfer = _transfer_form(window, formdata=request.form)
        if not transfer.validate_on_submit():
            return _refused_desk(window, ticket_id, transfer=transfer)
        category_id, target_window_id = transfer.category_id.data, transfer.window_id.data
    ticket = windows.act(
        session,
        window,
        ticket_id,
        windows.WindowAction(
            name,
            version=_int_field("version"),
            matter=matter,
            category_id=category_id,
            target_window_id=target_window_id,
        ),
        actor=current_actor(),
        now=utcnow(),
        settings=runtime().settings,
    )
    if name == "recall":
        publish_call(ticket, window, recall=True)
    session.commit()
    return _render_desk(window, f"{ticket.display} 号：{_DONE_TEXT[name]}")


_DONE_TEXT = {
    "recall": "已重呼",
    "no_show": "已记为过号",
    "serve": "开始办理",
    "hold": "已挂起",
    "resume": "已恢复办理",
    "finish": "已办结",
    "transfer": "已转移",
}


def _scan_refused(window: Window, form: ScanForm) -> Response:
    """The scanner field again with its error beside it (htmx swaps it in place)."""
    body = render_template("console/terminal_scan.html", window=window, scan_form=form)
    response = Response(body, status=422, mimetype="text/html")
    response.headers["HX-Retarget"] = "#scan-form"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


def _citizen_refused(message: str) -> Response:
    body = render_template("console/_alert.html", kind="error", message=message)
    return Response(body, status=422, mimetype="text/html")


@blp.post("/terminal/windows/<int:window_id>/identify")
@console_page(*HALL_STAFF)
def terminal_identify(window_id: int) -> Any:
    """A scanned personal code: who it is (masked) and what can be done for them."""
    window = clerk_window(window_id)
    form = ScanForm()
    if not form.validate_on_submit():
        return _scan_refused(window, form)
    code = (form.code.data or "").strip()
    card = citizen_card(scanned_code(code), window.hall_id)
    return render_template(
        "console/terminal_citizen.html",
        card=card,
        window=window,
        take_form=_take_form(window, code),
        check_in_form=CheckInForm(formdata=None, code=code),
    )


@blp.post("/terminal/windows/<int:window_id>/take")
@console_page(*HALL_STAFF)
def terminal_take(window_id: int) -> Any:
    """Take a number for the citizen just scanned (无感取号)."""
    session = get_session()
    window = clerk_window(window_id)
    form = _take_form(window, formdata=request.form)
    if not form.validate_on_submit():
        return _citizen_refused("；".join(e for errors in form.errors.values() for e in errors))
    issued = take_for_scanned(window, form.category_id.data, (form.code.data or "").strip())
    category = halls.get_category(session, issued.ticket.category_id)
    session.commit()
    return render_template(
        "console/_alert.html",
        kind="success",
        message=f"已为其取号 {issued.ticket.display}（{category.name}），"
        f"前面还有 {issued.ahead} 人",
    )


@blp.post("/terminal/windows/<int:window_id>/check-in")
@console_page(*HALL_STAFF)
def terminal_check_in(window_id: int) -> Any:
    """Check the scanned citizen's appointment in: it becomes a priority number."""
    session = get_session()
    window = clerk_window(window_id)
    form = CheckInForm()
    if not form.validate_on_submit():
        return _citizen_refused("请重新扫码")
    result = checkin.check_in_with_personal_code(
        session,
        token=(form.code.data or "").strip(),
        hall_id=window.hall_id,
        appointment_id=None,  # the earliest appointment due at this hall, as the API does
        staff_id=current_principal().id,
        settings=runtime().settings,
        rules=appointment_rules(),
        now=utcnow(),
    )
    session.commit()
    return render_template(
        "console/_alert.html",
        kind="success",
        message=f"预约已签到，号码 {result.ticket.display}",
    )

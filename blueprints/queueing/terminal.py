"""Queue API for window terminals: identify a citizen, take a number for them, call and serve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from flask.views import MethodView

from app.db import get_session, utcnow
from app.extensions import limiter
from app.halls import service as halls
from app.halls.models import Window, WindowStatus
from app.identity.realname import masked_identity
from app.integrations.verification import get_verification
from app.queueing import codes, runtime, windows
from app.queueing import scanned as scanned_citizens
from app.queueing.board import call_event
from app.queueing.citizens import citizen_at_window
from app.queueing.events import publish_after_commit
from app.queueing.green_channel import record_green_channel
from app.queueing.models import Ticket, TicketSource
from app.queueing.scanned import ScannedCitizen
from app.queueing.taking import Issued, issue_ticket
from app.queueing.transitions import hall_ticket, late_return
from app.security import get_cipher
from blueprints.authz import caller_key, current_principal, staff_required
from blueprints.halls.schemas import HallWindowOut
from blueprints.idempotency import idempotency_doc, idempotency_key
from blueprints.openapi import Blueprint
from blueprints.queueing.schemas import (
    ActionIn,
    CallNumberIn,
    CitizenCardOut,
    FinishIn,
    GreenChannelIn,
    PersonalScanIn,
    TerminalTakeIn,
    TicketOut,
    TransferIn,
    WindowStatusIn,
)
from blueprints.queueing.shared import (
    HALL_STAFF,
    current_actor,
    require_hall_staff,
    take_rate,
    ticket_out,
)

blp = Blueprint(
    "queue_terminal",
    __name__,
    url_prefix="/terminal",
    description="窗口终端：开关窗口、叫号、办理、转移、无感取号",
)


def clerk_window(window_id: int) -> Window:
    window = halls.get_window(get_session(), window_id)
    require_hall_staff(window.hall_id)
    return window


def publish_call(ticket: Ticket, window: Window, *, recall: bool = False) -> None:
    publish_after_commit(
        get_session(),
        runtime().events,
        window.hall_id,
        call_event(ticket, window, utcnow(), recall=recall),
    )


def call_next_once(window: Window) -> Ticket:
    """Call the next ticket to this window and announce it, unless the request is a resend of
    a call already made (same `Idempotency-Key`): then the ticket that call claimed, unannounced.
    """
    session = get_session()
    key = idempotency_key()
    earlier = windows.earlier_call(session, window, key) if key else None
    if earlier is not None:
        return earlier
    ticket = windows.call_next(
        session,
        window,
        actor=current_actor(),
        now=utcnow(),
        settings=runtime().settings,
        idempotency_key=key,
    )
    publish_call(ticket, window)
    return ticket


def citizen_card(scanned: ScannedCitizen, hall_id: int) -> dict[str, Any]:
    found = citizen_at_window(
        get_session(), scanned, hall_id, now=utcnow(), settings=runtime().settings
    )
    if scanned.user is not None:
        identity = masked_identity(get_cipher(), scanned.user)
        name, id_number = identity.get("name"), identity.get("id_number")
    else:
        name, id_number = scanned.masked_name, scanned.masked_id_number
    return {
        "user_id": scanned.user.id if scanned.user else None,
        "via": scanned.via,
        "name": name,
        "id_number": id_number,
        "green_reason": found.green_reason,
        "tickets": [ticket_out(t) for t in found.tickets_here_today],
    }


def scanned_code(code: str) -> ScannedCitizen:
    return scanned_citizens.scan(
        get_session(),
        runtime().settings,
        get_verification().city_code,
        get_cipher(),
        code,
        now=utcnow(),
    )


def take_for_scanned(window: Window, category_id: int, code: str) -> Issued:
    """A number in `category_id` for the citizen whose personal code or 红棉码 the clerk at
    `window` scanned (the code is used up); the caller commits. The API and the console's
    terminal both take numbers through here."""
    session = get_session()
    now = utcnow()
    category = halls.get_category(session, category_id)
    if category.hall_id != window.hall_id:
        raise codes.CodeWrongHall("所选业务不属于本大厅")
    scanned = scanned_code(code)
    scanned_citizens.consume(
        session, scanned, action="take", staff_id=current_principal().id, now=now
    )
    return issue_ticket(
        session,
        category=category,
        user_id=scanned.user.id if scanned.user else None,  # a walk-in: anonymous
        walk_in_birth_date=scanned.birth_date,
        source=TicketSource.TERMINAL,
        actor=current_actor(),
        now=now,
        settings=runtime().settings,
    )


@blp.route("/windows/<int:window_id>/identify")
class TerminalIdentify(MethodView):
    @blp.arguments(PersonalScanIn)
    @blp.response(200, CitizenCardOut)
    @blp.alt_response(403, description="窗口不属于本人所在大厅（WINDOW_NOT_IN_HALL）")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Identify a citizen by personal code or 红棉码: masked name, today's tickets here."""
        window = clerk_window(window_id)
        return citizen_card(scanned_code(body["code"]), window.hall_id)


@blp.route("/windows/<int:window_id>/take")
class TerminalTake(MethodView):
    decorators: ClassVar[list[Callable[..., Any]]] = [limiter.limit(take_rate, key_func=caller_key)]

    @blp.arguments(TerminalTakeIn)
    @blp.response(201, TicketOut)
    @blp.alt_response(
        409, description="个人码已使用（CODE_REPLAYED）、大厅未营业、号源已满、已持有号码"
    )
    @blp.alt_response(429, description="取号过于频繁")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Take a number for the citizen whose personal code or 红棉码 was scanned (无感取号).

        A 红棉码 of someone without a real-name account here takes an anonymous number, as the
        ticket machine would.
        """
        issued = take_for_scanned(clerk_window(window_id), body["category_id"], body["code"])
        get_session().commit()
        return ticket_out(issued.ticket, ahead=issued.ahead)


@blp.route("/windows/<int:window_id>/green-channel")
class TerminalGreenChannel(MethodView):
    @blp.arguments(GreenChannelIn)
    @blp.response(200, CitizenCardOut)
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Record that the citizen showed a disability certificate (green channel from now on)."""
        session = get_session()
        window = clerk_window(window_id)
        scanned = scanned_code(body["code"])
        user = scanned.registered_user()  # the flag is kept on the citizen's account
        now, staff_id = utcnow(), current_principal().id
        scanned_citizens.consume(session, scanned, action="green", staff_id=staff_id, now=now)
        record_green_channel(
            session, user.id, window=window, staff_id=staff_id, note=body["note"], now=now
        )
        card = citizen_card(scanned, window.hall_id)
        session.commit()
        return card


@blp.route("/windows/<int:window_id>")
class TerminalWindow(MethodView):
    @blp.response(200, HallWindowOut)
    @staff_required(*HALL_STAFF)
    def get(self, window_id: int) -> Window:
        """The window and the categories it serves."""
        return clerk_window(window_id)


@blp.route("/windows/<int:window_id>/status")
class TerminalWindowStatus(MethodView):
    @blp.arguments(WindowStatusIn)
    @blp.response(200, HallWindowOut)
    @blp.alt_response(409, description="窗口还有未办结的号码（WINDOW_BUSY）")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> Window:
        """Open, pause or close the window (the caller becomes its clerk on duty)."""
        session = get_session()
        window = windows.set_window_status(
            session,
            clerk_window(window_id),
            WindowStatus(body["status"]),
            clerk_id=current_principal().id,
            now=utcnow(),
        )
        session.commit()
        return window


@blp.route("/windows/<int:window_id>/call-next")
class TerminalCallNext(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(
        409,
        description="没有等候的号码（QUEUE_EMPTY）、窗口忙（WINDOW_BUSY）或未开启（WINDOW_NOT_OPEN）",
    )
    @blp.doc(
        parameters=[
            idempotency_doc("重发同一次叫号时带相同的值，返回第一次叫到的号码，不会再叫下一个")
        ]
    )
    @staff_required(*HALL_STAFF)
    def post(self, window_id: int) -> dict[str, Any]:
        """Call the next ticket: due appointments, then the green channel, then first come
        (`Idempotency-Key` honoured: a resend answers the ticket the first call claimed)."""
        ticket = call_next_once(clerk_window(window_id))
        get_session().commit()
        return ticket_out(ticket, estimate=False)


@blp.route("/windows/<int:window_id>/call")
class TerminalCallNumber(MethodView):
    @blp.arguments(CallNumberIn)
    @blp.response(200, TicketOut)
    @blp.alt_response(409, description="号码不在等候中（ILLEGAL_TRANSITION）或窗口忙")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Call a specific waiting number (指呼)."""
        session = get_session()
        window = clerk_window(window_id)
        ticket = windows.call_number(
            session,
            window,
            body["ticket_id"],
            actor=current_actor(),
            now=utcnow(),
            settings=runtime().settings,
        )
        publish_call(ticket, window)
        session.commit()
        return ticket_out(ticket, estimate=False)


def _ticket_action(name: windows.ActionName, schema: type, doc: str) -> type[MethodView]:
    """A POST view applying one window action to a ticket."""

    class Action(MethodView):
        @blp.arguments(schema)
        @blp.response(200, TicketOut)
        @blp.alt_response(409, description="状态已变化或重复点击（ILLEGAL_TRANSITION）")
        @blp.alt_response(403, description="窗口不属于本人所在大厅（WINDOW_NOT_IN_HALL）")
        @staff_required(*HALL_STAFF)
        def post(self, body: dict[str, Any], window_id: int, ticket_id: int) -> dict[str, Any]:
            session = get_session()
            window = clerk_window(window_id)
            action = windows.WindowAction(
                name,
                version=body.get("version"),
                matter=body.get("matter"),
                category_id=body.get("category_id"),
                target_window_id=body.get("window_id"),
            )
            ticket = windows.act(
                session,
                window,
                ticket_id,
                action,
                actor=current_actor(),
                now=utcnow(),
                settings=runtime().settings,
            )
            if name == "recall":
                publish_call(ticket, window, recall=True)
            session.commit()
            return ticket_out(ticket, estimate=False)

    Action.post.__doc__ = doc
    Action.__name__ = "Ticket" + name.title().replace("_", "")
    return Action


_ACTIONS: tuple[tuple[str, windows.ActionName, type, str], ...] = (
    ("recall", "recall", ActionIn, "Call the ticket again (counted)."),
    (
        "no-show",
        "no_show",
        ActionIn,
        "Mark the called ticket no-show after the configured recalls.",
    ),
    ("serve", "serve", ActionIn, "Start serving the called ticket."),
    ("hold", "hold", ActionIn, "Hold the ticket (挂起) while the citizen fetches a document."),
    ("resume", "resume", ActionIn, "Resume a held ticket at this window."),
    ("finish", "finish", FinishIn, "Finish, recording the matter handled."),
    (
        "transfer",
        "transfer",
        TransferIn,
        "Transfer to another category or window, keeping number and take time.",
    ),
)
for _path, _name, _schema, _doc in _ACTIONS:
    blp.route(f"/windows/<int:window_id>/tickets/<int:ticket_id>/{_path}")(
        _ticket_action(_name, _schema, _doc)
    )


@blp.route("/halls/<int:hall_id>/tickets/<int:ticket_id>/late-return")
class TerminalLateReturn(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(409, description="过号顺延已用过（LATE_RETURN_USED）或号码不是过号状态")
    @staff_required(*HALL_STAFF)
    def post(self, hall_id: int, ticket_id: int) -> dict[str, Any]:
        """Put a no-show who came back into the queue, some places back (过号顺延, once)."""
        session = get_session()
        require_hall_staff(hall_id)
        ticket = late_return(
            session,
            hall_ticket(session, hall_id, ticket_id),
            actor=current_actor(),
            now=utcnow(),
            settings=runtime().settings,
        )
        session.commit()
        return ticket_out(ticket)

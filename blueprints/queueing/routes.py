"""Queue API: citizens take numbers, window terminals call them, hall screens show them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import Forbidden
from app.extensions import limiter
from app.halls import service as halls
from app.halls.errors import WindowNotInHall
from app.halls.models import Window, WindowStatus
from app.identity.models import User
from app.identity.realname import masked_identity
from app.queueing import codes
from app.queueing import service as queue
from app.queueing.errors import TicketNotFound
from app.queueing.events import LocalBroker, make_broker, publish_after_commit
from app.queueing.forecast import ForecastCache, estimate_for
from app.queueing.green_channel import record_green_channel
from app.queueing.models import Ticket, TicketSource
from app.queueing.settings import QueueSettings, from_config
from app.security import get_cipher
from blueprints.authz import (
    citizen_required,
    current_principal,
    public,
    require_scope,
    staff_required,
)
from blueprints.halls.schemas import HallWindowOut
from blueprints.idempotency import idempotency_key
from blueprints.queueing.schemas import (
    ActionIn,
    BoardOut,
    CallNumberIn,
    CitizenCardOut,
    DynamicCodeOut,
    FinishIn,
    GreenChannelIn,
    PersonalCodeOut,
    PersonalScanIn,
    ScanIn,
    ScanOut,
    TakeIn,
    TerminalTakeIn,
    TicketListOut,
    TicketOut,
    TransferIn,
    WindowStatusIn,
)

blp = Blueprint(
    "queueing", __name__, url_prefix="/queue", description="排队取号：取号、叫号、大厅屏"
)

HALL_STAFF = ("window_clerk", "hall_manager")
SSE_KEEPALIVE_SECONDS = 15.0


def settings() -> QueueSettings:
    """The queue settings of this app, parsed once."""
    cached: QueueSettings | None = current_app.extensions.get("queue_settings")
    if cached is None:
        cached = current_app.extensions["queue_settings"] = from_config(current_app.config)
    return cached


def forecasts() -> ForecastCache:
    """This process's wait forecasts, each hall's kept QUEUE_FORECAST_MAX_AGE_SECONDS."""
    found: ForecastCache | None = current_app.extensions.get("queue_forecasts")
    if found is None:
        max_age = current_app.config["QUEUE_FORECAST_MAX_AGE_SECONDS"]
        found = current_app.extensions["queue_forecasts"] = ForecastCache(max_age)
    return found


def broker() -> LocalBroker:
    """This process's screen-event broker (Redis-backed when REDIS_URL is set)."""
    found: LocalBroker | None = current_app.extensions.get("queue_events")
    if found is None:
        found = current_app.extensions["queue_events"] = make_broker(
            current_app.config["REDIS_URL"],
            current_app.config.get("DRAMATIQ_NAMESPACE", "yuhaoban"),
        )
    return found


def _take_rate() -> str:
    return str(current_app.config["RATELIMIT_TAKE_TICKET"])


def _actor() -> Actor:
    principal = current_principal()
    return Actor("user" if principal.is_user else "staff", principal.id)


def ticket_out(
    ticket: Ticket, *, estimate: bool = True, ahead: int | None = None
) -> dict[str, Any]:
    """A ticket for the API, with live position and estimated wait while it waits.

    `ahead`: the position when the caller has just counted it (a number just issued).
    """
    session = get_session()
    now = utcnow()
    body: dict[str, Any] = {
        "id": ticket.id,
        "display": ticket.display,
        "hall_id": ticket.hall_id,
        "category_id": ticket.category_id,
        "service_day": ticket.service_day,
        "status": ticket.status,
        "source": ticket.source,
        "priority": ticket.priority,
        "green_reason": ticket.green_reason,
        "taken_at": ticket.taken_at,
        "called_at": ticket.called_at,
        "window_number": None,
        "recall_count": ticket.recall_count,
        "version": ticket.version,
        "ahead": None,
        "estimated_wait_minutes": None,
    }
    if ticket.window_id is not None:
        window = session.get(Window, ticket.window_id)
        body["window_number"] = window.number if window else None
    if estimate and ticket.status.is_active:
        result = estimate_for(session, ticket, now=now, forecasts=forecasts(), ahead=ahead)
        body["ahead"] = result.ahead
        if result.wait_seconds is not None:
            body["estimated_wait_minutes"] = (result.wait_seconds + 59) // 60
    return body


def _own_ticket(ticket_id: int) -> Ticket:
    ticket = get_session().get(Ticket, ticket_id)
    if ticket is None or ticket.user_id != current_principal().id:
        raise TicketNotFound(ticket_id=ticket_id)
    return ticket


# -- citizen -----------------------------------------------------------------------------------


@blp.route("/scan")
class Scan(MethodView):
    @blp.arguments(ScanIn)
    @blp.response(200, ScanOut)
    @blp.alt_response(
        422, description="二维码无效/过期/停用（CODE_FORGED/CODE_EXPIRED/CODE_REVOKED）"
    )
    @blp.alt_response(403, description="不在大厅附近（LOCATION_TOO_FAR）")
    @citizen_required
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check a scanned hall code; returns the hall and its categories with waiting counts."""
        session = get_session()
        now = utcnow()
        scan = codes.verify_hall_token(
            session,
            settings(),
            body["code"],
            now=now,
            latitude=body["latitude"],
            longitude=body["longitude"],
        )
        hall = halls.get_hall(session, scan.hall_id)
        state = queue.board(session, hall.id, now=now)
        waiting = {c["id"]: c["waiting"] for c in state["categories"]}
        return {
            "hall_id": hall.id,
            "hall_name": hall.name,
            "open": state["open"],
            "categories": [
                {
                    "id": c.id,
                    "name": c.name,
                    "prefix": c.prefix,
                    "daily_cap": c.daily_cap,
                    "typical_minutes": c.typical_minutes,
                    "matters": c.matters or [],
                    "waiting": waiting.get(c.id, 0),
                }
                for c in halls.list_categories(session, hall.id, active_only=True)
            ],
        }


@blp.route("/tickets")
class Tickets(MethodView):
    @blp.response(200, TicketListOut)
    @citizen_required
    def get(self) -> dict[str, Any]:
        """My tickets of today and any still active, with position and estimated wait."""
        session = get_session()
        from sqlalchemy import or_, select

        today = halls.local_day(utcnow())
        rows = session.scalars(
            select(Ticket)
            .where(
                Ticket.user_id == current_principal().id,
                or_(Ticket.service_day == today, Ticket.status.in_(queue.ACTIVE_STATUSES)),
            )
            .order_by(Ticket.taken_at.desc())
            .limit(50)
        )
        return {"tickets": [ticket_out(t) for t in rows]}

    @blp.arguments(TakeIn)
    @blp.response(201, TicketOut)
    @blp.alt_response(
        409,
        description="大厅未营业（HALL_CLOSED）、号源已满（DAILY_CAP_REACHED）或已持有号码（ALREADY_HOLDING_TICKET，details.ticket）",
    )
    @blp.alt_response(422, description="二维码无效/过期/停用、与所选大厅不符、缺少定位")
    @blp.alt_response(403, description="不在大厅附近（LOCATION_TOO_FAR）")
    @blp.alt_response(429, description="取号过于频繁")
    @limiter.limit(_take_rate)
    @citizen_required
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Take a number by hall code (`Idempotency-Key` honoured)."""
        session = get_session()
        now = utcnow()
        key = idempotency_key()
        category = halls.get_category(session, body["category_id"])
        scan = codes.verify_hall_token(
            session,
            settings(),
            body["code"],
            now=now,
            hall_id=category.hall_id,
            latitude=body["latitude"],
            longitude=body["longitude"],
        )
        issued = queue.issue_ticket(
            session,
            category=category,
            user_id=current_principal().id,
            source=TicketSource(scan.source),
            actor=_actor(),
            now=now,
            settings=settings(),
            idempotency_key=key,
        )
        session.commit()
        return ticket_out(issued.ticket, ahead=issued.ahead)


@blp.route("/tickets/<int:ticket_id>")
class TicketDetail(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(404, description="号码不存在")
    @citizen_required
    def get(self, ticket_id: int) -> dict[str, Any]:
        """One of my tickets, with live position and estimated wait."""
        return ticket_out(_own_ticket(ticket_id))


@blp.route("/tickets/<int:ticket_id>/cancel")
class TicketCancel(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(409, description="号码已在办理或已结束（ILLEGAL_TRANSITION）")
    @citizen_required
    def post(self, ticket_id: int) -> dict[str, Any]:
        """Cancel one of my tickets."""
        session = get_session()
        ticket = queue.cancel(session, _own_ticket(ticket_id), actor=_actor(), now=utcnow())
        session.commit()
        return ticket_out(ticket)


@blp.route("/personal-code")
class PersonalCode(MethodView):
    @blp.response(200, PersonalCodeOut)
    @citizen_required
    def get(self) -> dict[str, Any]:
        """A fresh personal code (60 s) to show at a window terminal or kiosk."""
        token, expires_at = codes.personal_token(settings(), current_principal().id, utcnow())
        return {"code": token, "expires_at": expires_at, "svg": codes.qr_svg(token).decode()}


# -- window terminal ---------------------------------------------------------------------------


def _require_hall(hall_id: int) -> None:
    try:
        require_scope(HALL_STAFF, hall_id)
    except Forbidden as error:
        raise WindowNotInHall(hall_id=hall_id) from error


def _clerk_window(window_id: int) -> Window:
    window = halls.get_window(get_session(), window_id)
    _require_hall(window.hall_id)
    return window


def _publish_call(ticket: Ticket, window: Window, *, recall: bool = False) -> None:
    publish_after_commit(
        get_session(),
        broker(),
        window.hall_id,
        queue.call_event(ticket, window, utcnow(), recall=recall),
    )


def _citizen_card(user: User, hall_id: int) -> dict[str, Any]:
    session = get_session()
    from sqlalchemy import select

    identity = masked_identity(get_cipher(), user)
    today = halls.local_day(utcnow())
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.user_id == user.id, Ticket.hall_id == hall_id, Ticket.service_day == today)
        .order_by(Ticket.taken_at)
    )
    return {
        "user_id": user.id,
        "name": identity.get("name"),
        "id_number": identity.get("id_number"),
        "green_reason": queue.green_reason(
            user.birth_date, today, settings(), flagged=queue.is_flagged(session, user.id)
        ),
        "tickets": [ticket_out(t) for t in tickets],
    }


def _scanned_user(code: str) -> tuple[User, codes.PersonalScan]:
    scan = codes.verify_personal(settings(), code, now=utcnow())
    user = get_session().get(User, scan.user_id)
    if user is None or user.disabled:
        raise codes.CodeForged()
    return user, scan


@blp.route("/terminal/windows/<int:window_id>/identify")
class TerminalIdentify(MethodView):
    @blp.arguments(PersonalScanIn)
    @blp.response(200, CitizenCardOut)
    @blp.alt_response(403, description="窗口不属于本人所在大厅（WINDOW_NOT_IN_HALL）")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Identify a citizen by personal code: masked name, today's tickets here."""
        window = _clerk_window(window_id)
        user, _scan = _scanned_user(body["code"])
        return _citizen_card(user, window.hall_id)


@blp.route("/terminal/windows/<int:window_id>/take")
class TerminalTake(MethodView):
    @blp.arguments(TerminalTakeIn)
    @blp.response(201, TicketOut)
    @blp.alt_response(
        409, description="个人码已使用（CODE_REPLAYED）、大厅未营业、号源已满、已持有号码"
    )
    @blp.alt_response(429, description="取号过于频繁")
    @limiter.limit(_take_rate)
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Take a number for the citizen whose personal code was scanned (无感取号)."""
        session = get_session()
        now = utcnow()
        window = _clerk_window(window_id)
        category = halls.get_category(session, body["category_id"])
        if category.hall_id != window.hall_id:
            raise codes.CodeWrongHall("所选业务不属于本大厅")
        user, scan = _scanned_user(body["code"])
        codes.consume_personal(
            session, scan, action="take", staff_id=current_principal().id, now=now
        )
        issued = queue.issue_ticket(
            session,
            category=category,
            user_id=user.id,
            source=TicketSource.TERMINAL,
            actor=_actor(),
            now=now,
            settings=settings(),
        )
        session.commit()
        return ticket_out(issued.ticket, ahead=issued.ahead)


@blp.route("/terminal/windows/<int:window_id>/green-channel")
class TerminalGreenChannel(MethodView):
    @blp.arguments(GreenChannelIn)
    @blp.response(200, CitizenCardOut)
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Record that the citizen showed a disability certificate (green channel from now on)."""
        session = get_session()
        window = _clerk_window(window_id)
        user, scan = _scanned_user(body["code"])
        now, staff_id = utcnow(), current_principal().id
        codes.consume_personal(session, scan, action="green", staff_id=staff_id, now=now)
        record_green_channel(
            session, user.id, window=window, staff_id=staff_id, note=body["note"], now=now
        )
        card = _citizen_card(user, window.hall_id)
        session.commit()
        return card


@blp.route("/terminal/windows/<int:window_id>")
class TerminalWindow(MethodView):
    @blp.response(200, HallWindowOut)
    @staff_required(*HALL_STAFF)
    def get(self, window_id: int) -> Window:
        """The window and the categories it serves."""
        return _clerk_window(window_id)


@blp.route("/terminal/windows/<int:window_id>/status")
class TerminalWindowStatus(MethodView):
    @blp.arguments(WindowStatusIn)
    @blp.response(200, HallWindowOut)
    @blp.alt_response(409, description="窗口还有未办结的号码（WINDOW_BUSY）")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> Window:
        """Open, pause or close the window (the caller becomes its clerk on duty)."""
        session = get_session()
        window = queue.set_window_status(
            session,
            _clerk_window(window_id),
            WindowStatus(body["status"]),
            clerk_id=current_principal().id,
            now=utcnow(),
        )
        session.commit()
        return window


@blp.route("/terminal/windows/<int:window_id>/call-next")
class TerminalCallNext(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(
        409,
        description="没有等候的号码（QUEUE_EMPTY）、窗口忙（WINDOW_BUSY）或未开启（WINDOW_NOT_OPEN）",
    )
    @staff_required(*HALL_STAFF)
    def post(self, window_id: int) -> dict[str, Any]:
        """Call the next ticket: due appointments, then the green channel, then first come."""
        session = get_session()
        window = _clerk_window(window_id)
        ticket = queue.call_next(session, window, actor=_actor(), now=utcnow(), settings=settings())
        _publish_call(ticket, window)
        session.commit()
        return ticket_out(ticket, estimate=False)


@blp.route("/terminal/windows/<int:window_id>/call")
class TerminalCallNumber(MethodView):
    @blp.arguments(CallNumberIn)
    @blp.response(200, TicketOut)
    @blp.alt_response(409, description="号码不在等候中（ILLEGAL_TRANSITION）或窗口忙")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any], window_id: int) -> dict[str, Any]:
        """Call a specific waiting number (指呼)."""
        session = get_session()
        window = _clerk_window(window_id)
        ticket = queue.call_number(
            session, window, body["ticket_id"], actor=_actor(), now=utcnow(), settings=settings()
        )
        _publish_call(ticket, window)
        session.commit()
        return ticket_out(ticket, estimate=False)


def _ticket_action(name: str, schema: type = ActionIn, doc: str = "") -> type[MethodView]:
    """A POST view applying one window action to a ticket."""

    class Action(MethodView):
        @blp.arguments(schema)
        @blp.response(200, TicketOut)
        @blp.alt_response(409, description="状态已变化或重复点击（ILLEGAL_TRANSITION）")
        @blp.alt_response(403, description="窗口不属于本人所在大厅（WINDOW_NOT_IN_HALL）")
        @staff_required(*HALL_STAFF)
        def post(self, body: dict[str, Any], window_id: int, ticket_id: int) -> dict[str, Any]:
            session = get_session()
            window = _clerk_window(window_id)
            now, actor, version = utcnow(), _actor(), body.get("version")
            if name == "recall":
                ticket = queue.recall(
                    session, window, ticket_id, actor=actor, now=now, version=version
                )
                _publish_call(ticket, window, recall=True)
            elif name == "no-show":
                ticket = queue.mark_no_show(
                    session,
                    window,
                    ticket_id,
                    actor=actor,
                    now=now,
                    settings=settings(),
                    version=version,
                )
            elif name == "serve":
                ticket = queue.start_serving(
                    session, window, ticket_id, actor=actor, now=now, version=version
                )
            elif name == "hold":
                ticket = queue.hold(
                    session, window, ticket_id, actor=actor, now=now, version=version
                )
            elif name == "resume":
                ticket = queue.resume(
                    session, window, ticket_id, actor=actor, now=now, version=version
                )
            elif name == "finish":
                ticket = queue.finish(
                    session,
                    window,
                    ticket_id,
                    matter=body.get("matter"),
                    actor=actor,
                    now=now,
                    version=version,
                )
            else:  # transfer
                ticket = queue.transfer(
                    session,
                    window,
                    ticket_id,
                    category_id=body.get("category_id"),
                    target_window_id=body.get("window_id"),
                    actor=actor,
                    now=now,
                    version=version,
                )
            session.commit()
            return ticket_out(ticket, estimate=False)

    Action.post.__doc__ = doc
    Action.__name__ = "Ticket" + name.title().replace("-", "")
    return Action


for _name, _schema, _doc in (
    ("recall", ActionIn, "Call the ticket again (counted)."),
    ("no-show", ActionIn, "Mark the called ticket no-show after the configured recalls."),
    ("serve", ActionIn, "Start serving the called ticket."),
    ("hold", ActionIn, "Hold the ticket (挂起) while the citizen fetches a document."),
    ("resume", ActionIn, "Resume a held ticket at this window."),
    ("finish", FinishIn, "Finish, recording the matter handled."),
    (
        "transfer",
        TransferIn,
        "Transfer to another category or window, keeping number and take time.",
    ),
):
    blp.route(f"/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/{_name}")(
        _ticket_action(_name, _schema, _doc)
    )


@blp.route("/terminal/halls/<int:hall_id>/tickets/<int:ticket_id>/late-return")
class TerminalLateReturn(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(409, description="过号顺延已用过（LATE_RETURN_USED）或号码不是过号状态")
    @staff_required(*HALL_STAFF)
    def post(self, hall_id: int, ticket_id: int) -> dict[str, Any]:
        """Put a no-show who came back into the queue, some places back (过号顺延, once)."""
        session = get_session()
        _require_hall(hall_id)
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.hall_id != hall_id:
            raise TicketNotFound(ticket_id=ticket_id)
        ticket = queue.late_return(
            session, ticket, actor=_actor(), now=utcnow(), settings=settings()
        )
        session.commit()
        return ticket_out(ticket)


# -- hall screen -------------------------------------------------------------------------------


@blp.route("/screen/halls/<int:hall_id>/board")
class ScreenBoard(MethodView):
    @blp.response(200, BoardOut)
    @blp.alt_response(404, description="大厅不存在")
    @public
    def get(self, hall_id: int) -> dict[str, Any]:
        """What the hall screen shows (numbers only, no personal data)."""
        session = get_session()
        halls.get_hall(session, hall_id)
        return queue.board(session, hall_id, now=utcnow())


def _sse(event: str, data: dict[str, Any] | None = None, *, event_id: str | None = None) -> str:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data or {}, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


@blp.route("/screen/halls/<int:hall_id>/events")
class ScreenEvents(MethodView):
    @blp.alt_response(
        200, description="text/event-stream：event: call / recall，data 含 text（播报文本）"
    )
    @blp.alt_response(404, description="大厅不存在")
    @public
    def get(self, hall_id: int) -> Response:
        """Server-Sent Events: each call and recall with its announcement text."""
        halls.get_hall(get_session(), hall_id)
        get_session().close()  # the stream may last hours; hold no connection
        listener = broker().listen(hall_id, timeout=SSE_KEEPALIVE_SECONDS)

        def stream() -> Iterator[str]:
            yield "retry: 3000\n" + _sse("hello", {"hall_id": hall_id})
            for payload in listener:
                if payload is None:
                    yield ": keep-alive\n\n"
                else:
                    yield _sse(
                        payload.get("type", "call"), payload, event_id=str(payload.get("ticket_id"))
                    )

        # No app context inside the stream: it needs none, and must hold no db connection.
        return Response(
            stream(),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


@blp.route("/screen/halls/<int:hall_id>/dynamic-code")
class ScreenDynamicCode(MethodView):
    @blp.response(200, DynamicCodeOut)
    @blp.alt_response(403, description="不是本大厅的工作人员或屏幕账号")
    @staff_required(*HALL_STAFF)
    def get(self, hall_id: int) -> dict[str, Any]:
        """The entrance screen's current code (changes every period; no location needed)."""
        _require_hall(hall_id)
        halls.get_hall(get_session(), hall_id)
        token, next_at = codes.dynamic_token(settings(), hall_id, utcnow())
        return {
            "code": token,
            "next_at": next_at,
            "period_seconds": settings().dynamic_period_seconds,
            "svg": codes.qr_svg(token).decode(),
        }

"""Queue API for citizens: scan a hall's code, take a number, follow and cancel it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from flask.views import MethodView

from app.db import get_session, utcnow
from app.extensions import limiter
from app.halls import service as halls
from app.queueing import codes, runtime
from app.queueing.board import board
from app.queueing.citizens import my_tickets, own_ticket
from app.queueing.models import TicketSource
from app.queueing.taking import issue_ticket, read_hall_code_take
from app.queueing.transitions import cancel
from blueprints.authz import (
    caller_key,
    citizen_required,
    citizen_required_family_in_view,
    confirm_family,
    current_principal,
    unconfirmed_principal,
)
from blueprints.idempotency import idempotency_key
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, page_of, page_schema
from blueprints.queueing.schemas import (
    PersonalCodeOut,
    ScanIn,
    ScanOut,
    TakeIn,
    TicketOut,
)
from blueprints.queueing.shared import current_actor, take_rate, ticket_out
from blueprints.transactions import statement_commits

blp = Blueprint(
    "queueing", __name__, url_prefix="/queue", description="排队取号：扫码、取号、查看与取消"
)

# Argument schemas are given as instances: given a class, webargs builds a new instance (its
# fields deep-copied) on every request. An instance is only read when loading.


@blp.route("/scan")
class Scan(MethodView):
    @blp.arguments(ScanIn())
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
            runtime().settings,
            body["code"],
            now=now,
            latitude=body["latitude"],
            longitude=body["longitude"],
        )
        hall = halls.get_hall(session, scan.hall_id)
        state = board(session, hall.id, now=now)
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
    decorators: ClassVar[list[Callable[..., Any]]] = [
        limiter.limit(take_rate, key_func=caller_key, methods=["POST"])
    ]

    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, page_schema(TicketOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My tickets of today and any still active, with position and estimated wait."""
        page = page_of(my_tickets(get_session(), current_principal().id, now=utcnow()), args)
        return {**page, "items": [ticket_out(t) for t in page["items"]]}

    @blp.arguments(TakeIn())
    @blp.response(201, TicketOut)
    @blp.alt_response(
        409,
        description="大厅未营业（HALL_CLOSED）、号源已满（DAILY_CAP_REACHED）或已持有号码（ALREADY_HOLDING_TICKET，details.ticket）",
    )
    @blp.alt_response(422, description="二维码无效/过期/停用、与所选大厅不符、缺少定位")
    @blp.alt_response(403, description="不在大厅附近（LOCATION_TOO_FAR）")
    @blp.alt_response(429, description="取号过于频繁")
    @citizen_required_family_in_view
    @statement_commits
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Take a number by hall code (`Idempotency-Key` honoured)."""
        session = get_session()
        now = utcnow()
        settings = runtime().settings
        key = idempotency_key()
        caller = unconfirmed_principal()
        user_id = caller.id
        take = read_hall_code_take(
            session,
            settings,
            category_id=body["category_id"],
            token=body["code"],
            user_id=user_id,
            idempotency_key=key,
            now=now,
            latitude=body["latitude"],
            longitude=body["longitude"],
            family_id=caller.family_id,
            confirm_family=confirm_family,
        )
        issued = issue_ticket(
            session,
            category=take.category,
            user_id=user_id,
            source=TicketSource(take.scan.source),
            actor=current_actor(),
            now=now,
            settings=settings,
            idempotency_key=key,
            state=take.state,
        )
        session.commit()
        names = (take.hall_name, take.category.name)
        return ticket_out(issued.ticket, ahead=issued.ahead, names=names)


@blp.route("/tickets/<int:ticket_id>")
class TicketDetail(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(404, description="号码不存在")
    @citizen_required
    def get(self, ticket_id: int) -> dict[str, Any]:
        """One of my tickets, with live position and estimated wait."""
        return ticket_out(own_ticket(get_session(), current_principal().id, ticket_id))


@blp.route("/tickets/<int:ticket_id>/cancel")
class TicketCancel(MethodView):
    @blp.response(200, TicketOut)
    @blp.alt_response(409, description="号码已在办理或已结束（ILLEGAL_TRANSITION）")
    @citizen_required
    def post(self, ticket_id: int) -> dict[str, Any]:
        """Cancel one of my tickets."""
        session = get_session()
        ticket = own_ticket(session, current_principal().id, ticket_id)
        ticket = cancel(session, ticket, actor=current_actor(), now=utcnow())
        session.commit()
        return ticket_out(ticket)


@blp.route("/personal-code")
class PersonalCode(MethodView):
    @blp.response(200, PersonalCodeOut)
    @citizen_required
    def get(self) -> dict[str, Any]:
        """A fresh personal code (60 s) to show at a window terminal or kiosk."""
        token, expires_at = codes.personal_token(
            runtime().settings, current_principal().id, utcnow()
        )
        return {"code": token, "expires_at": expires_at, "svg": codes.qr_svg(token).decode()}

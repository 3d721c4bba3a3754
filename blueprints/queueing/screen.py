"""Queue API for hall screens: the board, the live call stream, the rotating entrance code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from app.db import get_session, utcnow
from app.halls import service as halls
from app.queueing import codes, runtime
from app.queueing.board import board
from blueprints.authz import DISPLAY_ROLE, public, screen_or_staff
from blueprints.openapi import Blueprint
from blueprints.queueing.schemas import BoardOut, DynamicCodeOut
from blueprints.queueing.shared import HALL_STAFF, require_hall_staff

blp = Blueprint(
    "queue_screen",
    __name__,
    url_prefix="/screen",
    description="大厅屏：叫号看板、实时叫号推送、入口动态码",
)


@blp.route("/halls/<int:hall_id>/board")
class ScreenBoard(MethodView):
    @blp.response(200, BoardOut)
    @blp.alt_response(404, description="大厅不存在")
    @public
    def get(self, hall_id: int) -> dict[str, Any]:
        """What the hall screen shows (numbers only, no personal data)."""
        session = get_session()
        halls.get_hall(session, hall_id)
        return board(session, hall_id, now=utcnow())


def _sse(event: str, data: dict[str, Any] | None = None, *, event_id: str | None = None) -> str:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data or {}, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


@blp.route("/halls/<int:hall_id>/events")
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
        keepalive = float(current_app.config["QUEUE_SSE_KEEPALIVE_SECONDS"])
        listener = runtime().events.listen(hall_id, timeout=keepalive)

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


@blp.route("/halls/<int:hall_id>/dynamic-code")
class ScreenDynamicCode(MethodView):
    @blp.response(200, DynamicCodeOut)
    @blp.alt_response(403, description="不是本大厅的大厅屏或工作人员")
    @blp.doc(security=[{"bearerAuth": []}, {"displayToken": []}])
    @screen_or_staff(*HALL_STAFF)
    def get(self, hall_id: int) -> dict[str, Any]:
        """The entrance screen's current code (changes every period; no location needed).

        The screen itself sends `Authorization: Display <token>` (registered by a hall manager
        under `/halls/{hall_id}/displays`); a clerk or manager of the hall may read it too.
        """
        require_hall_staff(hall_id, DISPLAY_ROLE)
        halls.get_hall(get_session(), hall_id)
        settings = runtime().settings
        token, next_at = codes.dynamic_token(settings, hall_id, utcnow())
        return {
            "code": token,
            "next_at": next_at,
            "period_seconds": settings.dynamic_period_seconds,
            "svg": codes.qr_svg(token).decode(),
        }

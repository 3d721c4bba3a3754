"""The hall screen (a TV at the entrance): latest calls, waiting counts and the rotating
entrance code, live over the hall's Server-Sent Events; a display token, no staff login.

The token arrives once in the URL an admin hands out (`/console/screen?token=...`), moves into
the session cookie, and the page redirects to a clean URL: it does not stay in the address bar,
the browser's history or access logs. Each request checks it again, so revoking the display
ends the screen at its next refresh.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, redirect, render_template, request, session, url_for

from app.db import get_session, utcnow
from app.errors import TokenInvalid
from app.halls import service as halls
from app.queueing import codes, displays, runtime
from app.queueing.models import HallDisplay
from blueprints.console import blp
from blueprints.console.access import console_public
from blueprints.console.rendering import qr_data_uri

DISPLAY_KEY = "display_token"


def _display() -> HallDisplay:
    token = session.get(DISPLAY_KEY)
    if not token:
        raise TokenInvalid("请使用管理员发放的大厅屏地址打开本页面")
    db = get_session()
    try:
        display = displays.authenticate(db, str(token), now=utcnow())
    except TokenInvalid:
        session.pop(DISPLAY_KEY, None)
        raise
    db.commit()  # when the screen was last seen
    return display


def _refused(error: TokenInvalid) -> Response:
    """A screen without a live token: a page the hall's staff can act on, not an error code."""
    body = render_template("console/screen_refused.html", message=error.message)
    return Response(body, status=401, mimetype="text/html")


@blp.get("/screen")
@console_public
def screen() -> Any:
    """The screen page; with `?token=` it first keeps the token and drops it from the URL."""
    token = request.args.get("token")
    if token:
        session[DISPLAY_KEY] = token.strip()[:256]
        return redirect(url_for("console.screen"))
    try:
        display = _display()
    except TokenInvalid as error:
        return _refused(error)
    hall = halls.get_hall(get_session(), display.hall_id)
    return render_template(
        "console/screen.html",
        hall=hall,
        board_url=f"/api/v1/screen/halls/{hall.id}/board",
        events_url=f"/api/v1/screen/halls/{hall.id}/events",
        code_url=url_for("console.screen_code"),
    )


@blp.get("/screen/code")
@console_public
def screen_code() -> Response:
    """The entrance code now (a QR image) and how long until it changes."""
    display = _display()
    settings = runtime().settings
    now = utcnow()
    token, next_at = codes.dynamic_token(settings, display.hall_id, now)
    return jsonify(
        image=qr_data_uri(token),
        next_in_seconds=max(int((next_at - now).total_seconds()), 1),
    )

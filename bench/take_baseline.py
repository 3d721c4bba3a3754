"""The benchmark's own app: the product, plus a hand-written SQL take-ticket to compare with.

`bench/queue_load.py` runs gunicorn on `bench.take_baseline:app`. The product never mounts
this route (it skips the cap, hours, location, rate limit and Idempotency-Key checks on
purpose): it exists only in this module. It still carries an authorisation rule (a citizen
token), so it costs what a real request costs apart from the queue logic itself: one
transaction with the same statements written by hand.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from sqlalchemy import text

from app import create_app
from app.calendar import local_day
from app.db import get_session, utcnow
from blueprints.authz import citizen_required, current_principal

baseline = Blueprint("bench_baseline", __name__, url_prefix="/api/v1/queue")

ACTIVE_CHECK = text(
    "SELECT id FROM tickets WHERE user_id = :u AND category_id = :c"
    " AND status IN ('waiting', 'called', 'serving', 'held', 'transferred') LIMIT 1"
)


@baseline.route("/_bench/take-baseline", methods=["POST"])
@citizen_required
def take_baseline() -> dict[str, Any]:
    """Bench only: take a number in raw SQL (code row, one-active check, counter, insert)."""
    body = request.get_json(force=True)
    session = get_session()
    now, user_id = utcnow(), current_principal().id
    category_id, code_id = int(body["category_id"]), int(body["code_id"])
    day = local_day(now)
    hall_id: int = session.execute(
        text("SELECT hall_id FROM hall_codes WHERE id = :c AND revoked_at IS NULL"),
        {"c": code_id},
    ).scalar_one()
    existing = session.execute(ACTIVE_CHECK, {"u": user_id, "c": category_id}).scalar()
    if existing:
        return {"id": existing, "existing": True}
    number: int = session.execute(
        text(
            "INSERT INTO ticket_counters (category_id, service_day, last_number)"
            " VALUES (:c, :d, 1) "
            "ON CONFLICT (category_id, service_day) DO UPDATE "
            "SET last_number = ticket_counters.last_number + 1 RETURNING last_number"
        ),
        {"c": category_id, "d": day},
    ).scalar_one()
    ticket_id: int = session.execute(
        text(
            "INSERT INTO tickets (hall_id, category_id, issued_category_id, service_day,"
            " number, display, user_id, status, source, priority, taken_at, queue_at,"
            " recall_count, late_return_used, notified_near, version)"
            " VALUES (:h, :c, :c, :d, :n, :disp, :u, 'waiting', 'hall_code', 0,"
            " :now, :now, 0, false, false, 1) RETURNING id"
        ),
        {
            "h": hall_id,
            "c": category_id,
            "d": day,
            "n": number,
            "disp": f"B{number:03d}",
            "u": user_id,
            "now": now,
        },
    ).scalar_one()
    session.execute(
        text(
            "INSERT INTO ticket_transitions"
            " (ticket_id, action, to_status, actor_kind, actor_id, at, details)"
            " VALUES (:t, 'take', 'waiting', 'user', :u, :now, '{}')"
        ),
        {"t": ticket_id, "u": user_id, "now": now},
    )
    session.commit()
    return {"id": ticket_id, "number": number}


app = create_app()
app.register_blueprint(baseline)

"""容缺 materials supplied on real parallel connections: a double tap on the upload of the last
missing material, and an upload crossing the sweep that ends lapsed cases.

The promise is recorded kept once (one 'supply' transition); the other uploads are told the
materials can no longer change (409 MATERIALS_LOCKED), never a 500. An upload that read the case
before the lapse committed must not then record a supply on a terminated case.

The race through the route runs on both backends (on SQLite the writers take turns: BEGIN
IMMEDIATE); the deterministic interleaving with the lapse needs PostgreSQL. Like
every race test (tests/support/races.py), these
tests commit and remove their rows afterwards.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.applications import tolerance
from app.applications.models import Application, ApplicationEvent, ApplicationStatus
from app.materials.models import ApplicationMaterial
from app.notify.models import NotificationOutbox
from tests.applications.conftest import accepted_without_the_report, upload_png
from tests.support.races import (
    RACERS,
    behind_an_uncommitted,
    committing_session,  # noqa: F401  (the `session` fixture, committing: racers are separate connections)
    headers_committed,
    on_postgres,
    one_won,
)

REPORT = "water_quality_report"


def _accepted_without_the_report(  # type: ignore[no-untyped-def]
    client, session, district, citizen_headers
) -> tuple[dict[str, str], str]:
    """Committed, for the racers' connections."""
    headers = headers_committed(session, citizen_headers, district.legal_rep)
    number = accepted_without_the_report(client, headers, district)
    session.rollback()  # ends the read (SQLite: BEGIN IMMEDIATE holds the write lock)
    return headers, number


def _state(app: Flask, number: str) -> dict[str, Any]:
    """What the database holds for the application, read afresh."""
    with Session(app.extensions["db"].engine) as check:
        application = check.scalars(select(Application).where(Application.number == number)).one()
        return {
            "status": application.status,
            "supply_due": application.supply_due,
            "events": check.scalars(
                select(ApplicationEvent.action)
                .where(ApplicationEvent.application_id == application.id)
                .order_by(ApplicationEvent.id)
            ).all(),
            "reports": check.scalar(
                select(func.count())
                .select_from(ApplicationMaterial)
                .where(
                    ApplicationMaterial.application_id == application.id,
                    ApplicationMaterial.material_id == REPORT,
                )
            ),
            "notices": check.scalars(
                select(NotificationOutbox.data)
                .where(
                    NotificationOutbox.source_type == "application",
                    NotificationOutbox.source_id == application.id,
                )
                .order_by(NotificationOutbox.id)
            ).all(),
        }


def test_racing_uploads_of_the_last_missing_material_supply_it_once(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    headers, number = _accepted_without_the_report(client, session, district, citizen_headers)
    before = _state(app, number)
    start = threading.Barrier(RACERS)

    def racer(_: int) -> tuple[int, Any]:
        own = app.test_client()
        start.wait(timeout=30)
        answer = upload_png(own, headers, number, REPORT)
        return answer.status_code, answer.json

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(racer, range(RACERS)))

    one_won(answers, "MATERIALS_LOCKED")
    state = _state(app, number)
    assert state["events"] == [*before["events"], "supply"]
    assert state["supply_due"] is None and state["reports"] == 1
    assert state["notices"] == before["notices"]


@on_postgres
def test_an_upload_crossing_the_lapse_of_its_case_is_refused(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    """Deterministic: the sweep has ended the case (promise run out) but not committed when the
    upload reads it (still accepted, the promised day still ahead by the upload's clock)."""
    headers, number = _accepted_without_the_report(client, session, district, citizen_headers)
    due = _state(app, number)["supply_due"]

    def sweep(first: Session) -> None:
        assert tolerance.lapse(first, now=due + dt.timedelta(minutes=1)) == 1

    late = behind_an_uncommitted(
        app, sweep, lambda: upload_png(app.test_client(), headers, number, REPORT)
    )

    assert late.status_code == 409 and late.json["code"] == "MATERIALS_LOCKED", late.json
    state = _state(app, number)
    assert state["status"] == ApplicationStatus.TERMINATED
    assert state["events"][-1] == "lapse" and "supply" not in state["events"]
    assert state["reports"] == 0
    assert [n["phrase2"] for n in state["notices"]][-1] == "终止办理"

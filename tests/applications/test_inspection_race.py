"""核查 decisions of one inspection racing on real parallel connections (a double click on 撤销许可,
two reviewers of the department at once, a decision crossing the overdue sweep).

Exactly one decision counts: one revocation records one breach, revokes the licence once and is
audited once; the others are told the check is closed (409 INSPECTION_CLOSED), never a 500. A
confirm that read the check before a revoke committed must not leave it confirmed beside a
revoked licence, nor the reverse; a rectification crossing the sweep keeps its new day.

The races through the routes run on both backends (on SQLite the writers take turns: BEGIN
IMMEDIATE); the deterministic interleavings, a request reading the check while another
transaction has decided it but not committed, need PostgreSQL. Like test_submit_race.py (whose
committing `session` fixture and helpers this module shares), these tests commit and remove
their rows afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.applications import inspections
from app.applications.models import Application, CommitmentBreach, Inspection
from app.audit.models import AuditEntry
from app.audit.service import Actor
from app.db import utcnow
from app.licences import service as licences
from app.licences.models import Licence
from app.matters import catalogue
from tests.applications.conftest import apply_body, drainage_form, today
from tests.support.races import (
    RACERS,
    behind_an_uncommitted,
    committing_session,  # noqa: F401  (the `session` fixture, committing: racers are separate connections)
    headers_committed,
    on_postgres,
    one_won,
    race,
)

FALSE = {"note": "实际排放量远超承诺"}


def _inspected(  # type: ignore[no-untyped-def]
    client, session, district, citizen_headers, staff_headers
) -> tuple[dict[str, str], int]:
    """A committed 排水许可 granted on commitment, its inspection open; the water reviewer's
    headers and the inspection's id."""
    applicant = headers_committed(session, citizen_headers, district.legal_rep)
    body = {
        "matter_code": "PY-SWJ-PSXK",
        "form": drainage_form(),
        "enterprise_id": district.enterprise.id,
    }
    approved = apply_body(client, body, headers=applicant)
    assert approved.json["status"] == "approved", approved.json
    inspection_id = session.scalars(
        select(Inspection.id)
        .join(Application, Application.id == Inspection.application_id)
        .where(Application.number == approved.json["number"])
    ).one()
    reviewer = staff_headers(district.reviewers["PY-SWJ"])
    session.commit()  # the reviewer's login; ends the read (SQLite: BEGIN IMMEDIATE)
    return reviewer, inspection_id


def _state(app: Flask, inspection_id: int) -> dict[str, Any]:
    """What the database holds for the inspection, read afresh."""
    with Session(app.extensions["db"].engine) as check:
        inspection = check.get(Inspection, inspection_id)
        assert inspection is not None
        licence = check.scalars(
            select(Licence).where(Licence.application_id == inspection.application_id)
        ).one()
        return {
            "status": inspection.status,
            "overdue": inspection.overdue,
            "audit": check.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.subject_type == "inspection",
                    AuditEntry.subject_id == str(inspection_id),
                )
                .order_by(AuditEntry.id)
            ).all(),
            "breaches": check.scalar(
                select(func.count())
                .select_from(CommitmentBreach)
                .where(CommitmentBreach.application_id == inspection.application_id)
            ),
            "licence": licence.status,
            "licence_revocations": check.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.action == "licence.revoked",
                    AuditEntry.subject_type == "licence",
                    AuditEntry.subject_id == str(licence.id),
                )
            ),
        }


def test_racing_revokes_of_one_inspection_revoke_once_and_the_others_get_409(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)

    answers = race(
        app,
        "POST",
        f"/api/v1/review/inspections/{inspection_id}/revoke",
        reviewer,
        [FALSE] * RACERS,
    )

    one_won(answers, "INSPECTION_CLOSED")
    state = _state(app, inspection_id)
    assert state["status"] == "revoked" and state["audit"] == ["inspection.revoked"]
    assert state["breaches"] == 1
    assert state["licence"] == "revoked" and state["licence_revocations"] == 1


def _revoke(staff_id: int, inspection_id: int) -> Callable[[Session], None]:
    def step(first: Session) -> None:
        inspection = first.get(Inspection, inspection_id)
        assert inspection is not None
        application = first.get(Application, inspection.application_id)
        assert application is not None
        version = catalogue.get_version(first, application.matter_code, application.matter_version)
        inspections.revoke(
            first, inspection, version.content, staff_id=staff_id, note=FALSE["note"], now=utcnow()
        )

    return step


def _post(
    app: Flask, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Callable[[], Any]:
    return lambda: app.test_client().post(path, json=body, headers=headers)


@on_postgres
def test_a_revoke_that_read_the_check_before_the_first_committed_gets_409(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    """Deterministic: the first revoke has recorded its breach but not committed when the
    second reads the inspection (still open to it)."""
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    staff_id = district.reviewers["PY-SWJ"].id

    late = behind_an_uncommitted(
        app,
        _revoke(staff_id, inspection_id),
        _post(app, f"/api/v1/review/inspections/{inspection_id}/revoke", FALSE, reviewer),
    )

    assert late.status_code == 409 and late.json["code"] == "INSPECTION_CLOSED", late.json
    state = _state(app, inspection_id)
    assert state["status"] == "revoked" and state["audit"] == ["inspection.revoked"]
    assert state["breaches"] == 1 and state["licence_revocations"] == 1


@on_postgres
def test_a_confirm_crossing_a_revoke_never_confirms_a_revoked_licence(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    staff_id = district.reviewers["PY-SWJ"].id

    late = behind_an_uncommitted(
        app,
        _revoke(staff_id, inspection_id),
        _post(app, f"/api/v1/review/inspections/{inspection_id}/confirm", {}, reviewer),
    )

    assert late.status_code == 409 and late.json["code"] == "INSPECTION_CLOSED", late.json
    state = _state(app, inspection_id)
    assert state["status"] == "revoked" and state["audit"] == ["inspection.revoked"]
    assert state["licence"] == "revoked" and state["breaches"] == 1


@on_postgres
def test_a_revoke_crossing_a_confirm_never_revokes_a_confirmed_check(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    staff_id = district.reviewers["PY-SWJ"].id

    def confirm(first: Session) -> None:
        inspection = first.get(Inspection, inspection_id)
        assert inspection is not None
        inspections.confirm(first, inspection, staff_id=staff_id, note=None, now=utcnow())

    late = behind_an_uncommitted(
        app,
        confirm,
        _post(app, f"/api/v1/review/inspections/{inspection_id}/revoke", FALSE, reviewer),
    )

    assert late.status_code == 409 and late.json["code"] == "INSPECTION_CLOSED", late.json
    state = _state(app, inspection_id)
    assert state["status"] == "confirmed" and state["audit"] == ["inspection.confirmed"]
    assert state["licence"] == "valid" and state["breaches"] == 0


@on_postgres
def test_a_rectification_crossing_the_overdue_sweep_is_not_left_overdue(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    """The sweep marked the check overdue (not committed yet) when the reviewer set a new day:
    the new day must clear the mark, not be written beside the sweep's stale one."""
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    due = _due_at(app, inspection_id)
    by = (today() + dt.timedelta(days=10)).isoformat()

    def sweep(first: Session) -> None:
        assert inspections.mark_overdue(first, now=due + dt.timedelta(minutes=1)) == 1

    late = behind_an_uncommitted(
        app,
        sweep,
        _post(
            app,
            f"/api/v1/review/inspections/{inspection_id}/rectify",
            {"note": "预处理设施未按承诺安装", "by": by},
            reviewer,
        ),
    )

    assert late.status_code == 200 and late.json["overdue"] is False, late.json
    state = _state(app, inspection_id)
    assert state["status"] == "rectifying" and state["overdue"] is False


def _due_at(app: Flask, inspection_id: int) -> dt.datetime:
    with Session(app.extensions["db"].engine) as check:
        inspection = check.get(Inspection, inspection_id)
        assert inspection is not None
        return inspection.due_at


# -- a licence revoked by a reviewer while its check revokes it --------------------------------

STAFF_REVOKE = {"reason": "许可条件已不具备"}


def _licence_id(app: Flask, inspection_id: int) -> int:
    with Session(app.extensions["db"].engine) as check:
        inspection = check.get(Inspection, inspection_id)
        assert inspection is not None
        return check.scalars(
            select(Licence.id).where(Licence.application_id == inspection.application_id)
        ).one()


def test_racing_revokes_of_one_licence_revoke_it_once_and_the_others_get_409(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    licence_id = _licence_id(app, inspection_id)

    answers = race(
        app, "POST", f"/api/v1/licences/{licence_id}/revoke", reviewer, [STAFF_REVOKE] * RACERS
    )

    one_won(answers, "LICENCE_ALREADY_REVOKED")
    state = _state(app, inspection_id)
    assert state["licence"] == "revoked" and state["licence_revocations"] == 1


@on_postgres
def test_a_licence_revoke_behind_the_checks_revoke_gets_409(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    """The check's revoke has revoked the licence, not committed, when a reviewer's revoke of
    the licence reads it (still valid to it): one revocation, audited once."""
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    licence_id = _licence_id(app, inspection_id)

    late = behind_an_uncommitted(
        app,
        _revoke(district.reviewers["PY-SWJ"].id, inspection_id),
        _post(app, f"/api/v1/licences/{licence_id}/revoke", STAFF_REVOKE, reviewer),
    )

    assert late.status_code == 409 and late.json["code"] == "LICENCE_ALREADY_REVOKED", late.json
    state = _state(app, inspection_id)
    assert state["status"] == "revoked" and state["breaches"] == 1
    assert state["licence"] == "revoked" and state["licence_revocations"] == 1


@on_postgres
def test_a_checks_revoke_behind_a_licence_revoke_records_the_breach_and_revokes_once(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    """A reviewer revoked the licence (not committed) when the check's revoke read it: the
    check still ends revoked with its breach, and the licence is not revoked a second time."""
    reviewer, inspection_id = _inspected(client, session, district, citizen_headers, staff_headers)
    licence_id = _licence_id(app, inspection_id)
    staff_id = district.reviewers["PY-SWJ"].id

    def revoke_licence(first: Session) -> None:
        licence = first.get(Licence, licence_id)
        assert licence is not None
        licences.revoke(
            first,
            licence,
            reason=STAFF_REVOKE["reason"],
            actor=Actor("staff", staff_id),
            now=utcnow(),
        )

    late = behind_an_uncommitted(
        app,
        revoke_licence,
        _post(app, f"/api/v1/review/inspections/{inspection_id}/revoke", FALSE, reviewer),
    )

    assert late.status_code == 200, late.json
    state = _state(app, inspection_id)
    assert state["status"] == "revoked" and state["breaches"] == 1
    assert state["licence"] == "revoked" and state["licence_revocations"] == 1

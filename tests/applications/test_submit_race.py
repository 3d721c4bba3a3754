"""Submits of one signed draft racing on real parallel connections (a double tap on a phone).

Exactly one is decided: approved with one licence, one submit and one approval recorded, one
notification; the others are told it is no longer a draft (409 ILLEGAL_TRANSITION), never a
500. The same for a withdraw racing the submit and for resubmits racing after 补正; filing and
submitting with one Idempotency-Key from parallel connections gives one application.

The races run on both backends (on SQLite the writers take turns: BEGIN IMMEDIATE); the
deterministic interleavings, a request reading the draft while the first submit is sealed but
not committed, need PostgreSQL.

Like every race test these commit, and remove their rows afterwards (tests/support/races.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.applications import service
from app.applications.models import Application, ApplicationEvent, ApplicationStatus
from app.db import utcnow
from app.identity.models import User
from app.licences.models import Licence
from app.notify.models import NotificationOutbox
from app.seals.models import IssuedDocument
from blueprints.applications.present import services
from tests.applications.conftest import (
    HANDWRITING,
    advert_form,
    sign,
    upload_materials,
    weather_form,
)
from tests.support.races import (
    RACERS,
    behind_an_uncommitted,
    committing_session,  # noqa: F401  (the `session` fixture, committing: racers are separate connections)
    headers_committed,
    on_postgres,
    one_won,
    race,
)


def _draft(client, headers, body: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    draft = client.post("/api/v1/applications", json=body, headers=headers)
    assert draft.status_code == 201, draft.json
    number: str = draft.json["number"]
    upload_materials(client, headers, number, body["matter_code"], draft.json["matter_version"])
    signed = sign(client, headers, number)
    assert signed.status_code == 200, signed.json
    return number


def _state(engine: Engine, number: str) -> dict[str, Any]:
    """What the database holds for the application, read afresh."""
    with Session(engine) as check:
        application = check.scalars(select(Application).where(Application.number == number)).one()
        return {
            "status": application.status,
            "events": check.scalars(
                select(ApplicationEvent.action)
                .where(ApplicationEvent.application_id == application.id)
                .order_by(ApplicationEvent.id)
            ).all(),
            "licences": check.scalar(
                select(func.count())
                .select_from(Licence)
                .where(Licence.application_id == application.id)
            ),
            "notices": check.scalars(
                select(NotificationOutbox.data)
                .where(
                    NotificationOutbox.source_type == "application",
                    NotificationOutbox.source_id == application.id,
                )
                .order_by(NotificationOutbox.id)
            ).all(),
            "documents": check.scalar(select(func.count()).select_from(IssuedDocument)),
        }


def _enterprise_draft(client, session, district, citizen_headers) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    headers = headers_committed(session, citizen_headers, district.legal_rep)
    body = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(),
        "enterprise_id": district.enterprise.id,
        "submit": False,
    }
    number = _draft(client, headers, body)
    # End the transaction the last answer read in (SQLite: BEGIN IMMEDIATE holds the write lock).
    session.rollback()
    return headers, number


def test_racing_submits_of_one_draft_approve_it_once_and_the_others_get_409(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    headers, number = _enterprise_draft(client, session, district, citizen_headers)
    engine = app.extensions["db"].engine
    documents_before = _state(engine, number)["documents"]

    answers = race(app, "POST", f"/api/v1/applications/{number}/submit", headers, [None] * RACERS)

    approved = one_won(answers, "ILLEGAL_TRANSITION")
    assert approved["status"] == "approved" and approved["licence"] is not None
    state = _state(engine, number)
    assert state["status"] == ApplicationStatus.APPROVED
    assert state["events"] == ["submit", "approve_instantly"]
    assert state["licences"] == 1
    assert [n["phrase2"] for n in state["notices"]] == ["准予许可"]
    assert state["documents"] == documents_before + 1  # the licence, sealed once

    # A late second tap, after the first has committed, is told the same.
    late = app.test_client().post(f"/api/v1/applications/{number}/submit", headers=headers)
    assert late.status_code == 409 and late.json["code"] == "ILLEGAL_TRANSITION"
    session.rollback()
    assert _state(engine, number)["events"] == ["submit", "approve_instantly"]


def _behind_an_uncommitted_submit(
    app: Flask, district, number: str, late: Callable[[], Any]
) -> Any:  # type: ignore[no-untyped-def]
    """`late` (a request) runs while a first submit of the draft has sealed its licence but
    not committed; returns the late request's answer."""

    def first_submit(first: Session) -> None:
        found = service.for_applicant(first, district.legal_rep.id, number)
        user = first.get(User, district.legal_rep.id)
        assert user is not None
        loaded = service.submit(first, services(first), found, user=user, now=utcnow())
        assert loaded.licence is not None

    return behind_an_uncommitted(app, first_submit, late)


@on_postgres
def test_a_submit_that_read_the_draft_before_the_first_committed_gets_409(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    """Deterministic: the first submit has sealed the licence but not committed when the second
    request reads the application (still a draft to it)."""
    headers, number = _enterprise_draft(client, session, district, citizen_headers)

    late = _behind_an_uncommitted_submit(
        app,
        district,
        number,
        lambda: app.test_client().post(f"/api/v1/applications/{number}/submit", headers=headers),
    )

    assert late.status_code == 409 and late.json["code"] == "ILLEGAL_TRANSITION", late.json
    state = _state(app.extensions["db"].engine, number)
    assert state["events"] == ["submit", "approve_instantly"] and state["licences"] == 1
    assert len(state["notices"]) == 1


@on_postgres
def test_a_withdraw_racing_the_submit_never_withdraws_an_approved_case(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    """The withdraw read the draft before the submit committed: it must not then overwrite
    the approval (a withdrawn case holding a valid licence), nor be overwritten by it."""
    headers, number = _enterprise_draft(client, session, district, citizen_headers)

    late = _behind_an_uncommitted_submit(
        app,
        district,
        number,
        lambda: app.test_client().post(
            f"/api/v1/applications/{number}/withdraw", json={"reason": "点错了"}, headers=headers
        ),
    )

    assert late.status_code == 409 and late.json["code"] == "ILLEGAL_TRANSITION", late.json
    state = _state(app.extensions["db"].engine, number)
    assert state["status"] == ApplicationStatus.APPROVED
    assert state["events"] == ["submit", "approve_instantly"] and state["licences"] == 1


def _accepted_for_review(client, session, district, citizen_headers) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    """A committed 临时户外广告 application too large for 秒批: accepted, awaiting a reviewer."""
    applicant = headers_committed(session, citizen_headers, district.legal_rep)
    too_large = {
        "matter_code": "PY-CGJ-LSGG",
        "form": advert_form(width_m=6, height_m=5),  # over the limit: a reviewer decides
        "enterprise_id": district.enterprise.id,
        "submit": False,
    }
    number = _draft(client, applicant, too_large)
    submitted = client.post(f"/api/v1/applications/{number}/submit", headers=applicant)
    assert submitted.json["status"] == "accepted", submitted.json
    session.commit()
    return applicant, number


def test_racing_resubmits_after_a_supplement_request_resume_it_once(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    applicant, number = _accepted_for_review(client, session, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    session.commit()  # the reviewer's login, for the racing threads' own connections
    for step, body in (("claim", None), ("request-supplement", {"reason": "请补充现场照片"})):
        answer = client.post(
            f"/api/v1/review/applications/{number}/{step}", json=body, headers=reviewer
        )
        assert answer.status_code == 200, answer.json
    session.rollback()
    engine = app.extensions["db"].engine
    before = _state(engine, number)
    assert before["status"] == ApplicationStatus.SUPPLEMENT_REQUESTED, before

    answers = race(app, "POST", f"/api/v1/applications/{number}/resubmit", applicant, [{}] * RACERS)

    one_won(answers, "ILLEGAL_TRANSITION")
    state = _state(engine, number)
    assert state["events"] == [*before["events"], "resubmit"]
    assert len(state["notices"]) == len(before["notices"]) + 1


def test_a_second_submit_after_the_first_is_409_not_500(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    """Sequential, on both backends: the second tap arrives after the first has committed."""
    headers, number = _enterprise_draft(client, session, district, citizen_headers)
    first = app.test_client().post(f"/api/v1/applications/{number}/submit", headers=headers)
    assert first.status_code == 200 and first.json["status"] == "approved", first.json
    second = app.test_client().post(f"/api/v1/applications/{number}/submit", headers=headers)
    assert second.status_code == 409, second.json
    assert second.json["code"] == "ILLEGAL_TRANSITION" and second.json["message"]
    session.rollback()
    state = _state(app.extensions["db"].engine, number)
    assert state["events"] == ["submit", "approve_instantly"] and state["licences"] == 1


def test_racing_file_and_submit_with_one_key_gives_one_application(
    app: Flask, client, session: Session, district, citizen_headers
) -> None:
    """POST /applications with submit and the same Idempotency-Key, from parallel connections
    (SQLite: one after the other): one application, approved once; the rest get it back."""
    headers = headers_committed(session, citizen_headers, district.citizen)
    keyed = {**headers, "Idempotency-Key": "double-tap-1"}
    body = {
        "matter_code": "PY-QXJ-QXZM",
        "form": weather_form(),
        "submit": True,
        "handwriting_png": HANDWRITING,
    }

    answers = race(app, "POST", "/api/v1/applications", keyed, [body] * 4)

    assert sorted(status for status, _ in answers) == [200, 200, 200, 201], answers
    assert len({answer["number"] for _, answer in answers}) == 1
    assert {answer["status"] for _, answer in answers} == {"approved"}
    state = _state(app.extensions["db"].engine, answers[0][1]["number"])
    assert state["events"] == ["submit", "approve_instantly"] and state["licences"] == 1
    assert len(state["notices"]) == 1


def test_racing_claims_of_one_application_claim_it_once(
    app: Flask, client, session: Session, district, citizen_headers, staff_headers
) -> None:
    # A reviewer's double click (or two windows of the console) on 认领: one claim recorded.
    _, number = _accepted_for_review(client, session, district, citizen_headers)
    reviewer = staff_headers(district.reviewers["PY-CGJ"])
    session.commit()  # the reviewer's login, for the racing threads' own connections
    engine = app.extensions["db"].engine
    before = _state(engine, number)

    answers = race(
        app, "POST", f"/api/v1/review/applications/{number}/claim", reviewer, [None] * RACERS
    )

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * (RACERS - 1), answers
    state = _state(engine, number)
    assert state["events"] == [*before["events"], "claim"]

"""The reviewer's side: the department's queue ordered by deadline, claim / return / transfer,
and the decisions (approve with the seal applied, reject, request 补正).

A reviewer sees only their departments' applications; another department's is "not found".
Only the reviewer who holds an application (its assignee) decides it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.applications import inspections, notices, service, tolerance
from app.applications.errors import (
    ApplicationNotFound,
    LicenceNotIssued,
    MaterialsStillMissing,
    NotAssignee,
    TransferTargetInvalid,
)
from app.applications.models import OPEN_FOR_REVIEW, Application, ApplicationStatus
from app.audit.service import Actor
from app.audit.service import record as audit
from app.calendar import LOCAL_TZ
from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant
from app.licences.models import Licence
from app.matters import catalogue
from app.matters.models import Matter
from app.seals.lifecycle import SealActor

REVIEWER = StaffRole.REVIEWER.value
OPEN_STATUSES = tuple(status.value for status in OPEN_FOR_REVIEW)


def _in_scope(department_ids: Sequence[int] | None) -> list[ColumnElement[bool]]:
    return [] if department_ids is None else [Application.department_id.in_(department_ids)]


def queue(
    session: Session,
    department_ids: Sequence[int] | None,
    *,
    statuses: Sequence[str] = OPEN_STATUSES,
    assignee_id: int | None = None,
    offset: int,
    limit: int,
) -> tuple[list[Application], int]:
    """Open applications of the departments (None: all), the nearest statutory deadline first."""
    conditions = [Application.status.in_(list(statuses)), *_in_scope(department_ids)]
    if assignee_id is not None:
        conditions.append(Application.assignee_staff_id == assignee_id)
    total = session.scalar(select(func.count()).select_from(Application).where(*conditions)) or 0
    rows = session.scalars(
        select(Application)
        .where(*conditions)
        .order_by(Application.statutory_due.is_(None), Application.statutory_due, Application.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def for_reviewer(
    session: Session, department_ids: Sequence[int] | None, number: str
) -> Application:
    """One application of the reviewer's departments; any other is not found."""
    found = session.scalars(
        select(Application).where(Application.number == number, *_in_scope(department_ids))
    ).first()
    if found is None or found.status == ApplicationStatus.DRAFT:
        raise ApplicationNotFound(number=number)
    return found


def _require_assignee(application: Application, staff_id: int) -> None:
    if application.assignee_staff_id != staff_id:
        raise NotAssignee(number=application.number)


def _notify(session: Session, application: Application, now: dt.datetime) -> None:
    matter = session.get(Matter, application.matter_id)
    assert matter is not None
    notices.notify(session, application, matter, now=now)


def claim(session: Session, application: Application, *, staff_id: int, now: dt.datetime) -> None:
    service.lock(session, application)
    service.move(session, application, "claim", by="reviewer", actor_id=staff_id, now=now)
    application.assignee_staff_id = staff_id
    _notify(session, application, now)


def return_to_queue(
    session: Session,
    application: Application,
    *,
    staff_id: int,
    reason: str | None,
    now: dt.datetime,
) -> None:
    service.lock(session, application)
    _require_assignee(application, staff_id)
    service.move(
        session, application, "return", by="reviewer", actor_id=staff_id, now=now, reason=reason
    )
    application.assignee_staff_id = None


def _is_reviewer_of(session: Session, staff_id: int, department_id: int) -> bool:
    grant = session.scalars(
        select(StaffRoleGrant.id)
        .join(StaffAccount, StaffAccount.id == StaffRoleGrant.staff_id)
        .where(
            StaffRoleGrant.staff_id == staff_id,
            StaffRoleGrant.role == StaffRole.REVIEWER,
            StaffRoleGrant.department_id == department_id,
            StaffAccount.active.is_(True),
        )
    ).first()
    return grant is not None


def transfer(
    session: Session,
    application: Application,
    *,
    staff_id: int,
    to_staff_id: int,
    reason: str | None,
    now: dt.datetime,
) -> None:
    """Hand an application one holds to another reviewer of its department."""
    service.lock(session, application)
    _require_assignee(application, staff_id)
    if to_staff_id == staff_id or not _is_reviewer_of(
        session, to_staff_id, application.department_id
    ):
        raise TransferTargetInvalid(to_staff_id=to_staff_id)
    service.move(
        session, application, "transfer", by="reviewer", actor_id=staff_id, now=now, reason=reason
    )
    application.assignee_staff_id = to_staff_id


def request_supplement(
    session: Session, application: Application, *, staff_id: int, reason: str, now: dt.datetime
) -> None:
    """一次性告知: everything to correct, in one message; the clock stops until resubmission."""
    service.lock(session, application)
    _require_assignee(application, staff_id)
    service.move(
        session,
        application,
        "request_supplement",
        by="reviewer",
        actor_id=staff_id,
        now=now,
        reason=reason,
    )
    _notify(session, application, now)


def reject(
    session: Session, application: Application, *, staff_id: int, reason: str, now: dt.datetime
) -> None:
    service.lock(session, application)
    _require_assignee(application, staff_id)
    service.move(
        session, application, "reject", by="reviewer", actor_id=staff_id, now=now, reason=reason
    )
    _notify(session, application, now)


def approve(
    session: Session,
    services: service.Services,
    application: Application,
    *,
    actor: SealActor,
    reason: str | None,
    now: dt.datetime,
    request_id: str | None = None,
) -> Licence:
    """Approve and seal the licence with the department's seal, applied by this reviewer
    (the seal's own authorisation of roles, templates and matters is checked and audited)."""
    assert actor.id is not None
    service.lock(session, application)
    _require_assignee(application, actor.id)
    # Refused (409) before any shared-data lookup and before the seal is applied.
    service.flow_of(application).transition(application.status, "approve", "reviewer")
    if tolerance.pending(application):
        # 容缺: the permit waits for the promised materials (reject or 补正 need not).
        assert application.supply_due is not None
        raise MaterialsStillMissing(
            supply_due=application.supply_due.astimezone(LOCAL_TZ).isoformat()
        )
    version = catalogue.get_version(session, application.matter_code, application.matter_version)
    if version.content["licence"].get("template") is None:
        raise LicenceNotIssued(reason="no_template")
    matter = session.get(Matter, application.matter_id)
    assert matter is not None
    facts: dict[str, object] = dict((application.decision or {}).get("facts") or {})
    rule_set = catalogue.rule_set_of(version)
    if rule_set is not None:
        # The licence prints what the shared data says now (a reviewer may approve days later).
        looked_up, _ = service.lookup_facts(session, services, application, rule_set, now)
        facts.update(looked_up)
    facts.update({f"form.{k}": v for k, v in application.form.items()})
    # The seal before the case moves: a seal that refuses is a KeepsWrites error (its refusal
    # is committed with whatever the request flushed), so it must find the case as it was,
    # not approved without a licence.
    licence = service.issue_licence(
        session,
        services,
        application,
        version,
        facts,
        actor=actor,
        now=now,
        request_id=request_id,
    )
    service.move(
        session, application, "approve", by="reviewer", actor_id=actor.id, now=now, reason=reason
    )
    inspections.open_for(session, application, version.content, now=now)
    audit(
        session,
        "application.approved",
        actor=Actor("staff", actor.id),
        now=now,
        subject_type="application",
        subject_id=application.id,
        details={"number": application.number, "licence": licence.number},
        request_id=request_id,
    )
    notices.notify(session, application, matter, now=now)
    return licence

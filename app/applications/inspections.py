"""Post-approval inspections (核查) of permits granted on the applicant's commitment.

A matter with a `commitment` section gets an inspection task for its department whenever it is
approved, due `inspection_days` working days later. The task ends confirmed, in rectification
by a date (then confirmed), or revoked: the commitment was false, so the licence is revoked and
the holder is excluded from commitment approval for `exclusion_days` (the rules read that
through the `commitment_record` lookup).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.applications.errors import InspectionClosed, InspectionNotFound
from app.applications.models import (
    Application,
    CommitmentBreach,
    Inspection,
    InspectionStatus,
)
from app.audit.service import Actor
from app.audit.service import record as audit
from app.calendar import add_working_days, local_instant
from app.db import affected_rows, lock_row
from app.licences import service as licences
from app.licences.models import Licence, LicenceStatus

OPEN = (InspectionStatus.OPEN.value, InspectionStatus.RECTIFYING.value)


def open_for(
    session: Session, application: Application, content: Mapping[str, Any], *, now: dt.datetime
) -> Inspection | None:
    """The inspection task of an approval granted on commitment (None for other matters)."""
    commitment = content.get("commitment")
    if commitment is None:
        return None
    inspection = Inspection(
        application_id=application.id,
        department_id=application.department_id,
        status=InspectionStatus.OPEN,
        due_at=add_working_days(now, commitment["inspection_days"]),
        created_at=now,
    )
    session.add(inspection)
    session.flush()
    return inspection


def mark_overdue(session: Session, *, now: dt.datetime) -> int:
    """Mark every check still undecided past its day (or past its rectification day, for one
    in rectification), for the department's list to flag. Returns how many.

    Nothing is decided for the department: revoking a licence stays a reviewer's act."""
    result = session.execute(
        update(Inspection)
        .where(
            Inspection.overdue.is_(False),
            or_(
                and_(Inspection.status == InspectionStatus.OPEN.value, Inspection.due_at < now),
                and_(
                    Inspection.status == InspectionStatus.RECTIFYING.value,
                    Inspection.rectify_by < now,
                ),
            ),
        )
        .values(overdue=True)
    )
    return affected_rows(result)


def _in_scope(department_ids: Sequence[int] | None) -> list[ColumnElement[bool]]:
    return [] if department_ids is None else [Inspection.department_id.in_(department_ids)]


def queue(
    session: Session,
    department_ids: Sequence[int] | None,
    *,
    open_only: bool,
    offset: int,
    limit: int,
) -> tuple[list[Inspection], int]:
    conditions = [*_in_scope(department_ids)]
    if open_only:
        conditions.append(Inspection.status.in_(OPEN))
    total = session.scalar(select(func.count()).select_from(Inspection).where(*conditions)) or 0
    rows = session.scalars(
        select(Inspection)
        .where(*conditions)
        .order_by(Inspection.due_at, Inspection.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def for_reviewer(
    session: Session, department_ids: Sequence[int] | None, inspection_id: int
) -> Inspection:
    found = session.scalars(
        select(Inspection).where(Inspection.id == inspection_id, *_in_scope(department_ids))
    ).first()
    if found is None:
        raise InspectionNotFound(inspection_id=inspection_id)
    return found


def lock(session: Session, inspection: Inspection) -> None:
    """Hold the inspection's row until the transaction ends, and read it afresh.

    A decision reads the check's status, then writes: two at once (a double click on 撤销许可,
    a confirm crossing a revoke) would each decide on the open check they read, recording two
    breaches or leaving a check confirmed beside its revoked licence; a rectification crossing
    the overdue sweep would keep the sweep's mark beside its new day. Locked first, the second
    waits for the first to commit and sees what it left (InspectionClosed, 409). As
    `applications.service.lock` does for the application's row; on SQLite transactions already
    take turns.
    """
    lock_row(session, inspection)


def _close(
    session: Session,
    inspection: Inspection,
    status: InspectionStatus,
    *,
    staff_id: int,
    note: str | None,
    now: dt.datetime,
) -> None:
    lock(session, inspection)
    if inspection.status not in OPEN:
        raise InspectionClosed(status=inspection.status)
    inspection.status = status
    inspection.note = note
    inspection.closed_by = staff_id
    inspection.closed_at = now
    audit(
        session,
        f"inspection.{status.value}",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="inspection",
        subject_id=inspection.id,
        details={"application_id": inspection.application_id},
    )
    session.flush()


def confirm(
    session: Session, inspection: Inspection, *, staff_id: int, note: str | None, now: dt.datetime
) -> None:
    """The holder's situation matches the commitment (after rectification, if any)."""
    _close(session, inspection, InspectionStatus.CONFIRMED, staff_id=staff_id, note=note, now=now)


def require_rectification(
    session: Session,
    inspection: Inspection,
    *,
    staff_id: int,
    note: str,
    by: dt.date,
    now: dt.datetime,
) -> None:
    """Short of the commitment but curable: to be put right by the end of `by`."""
    lock(session, inspection)
    if inspection.status != InspectionStatus.OPEN:
        raise InspectionClosed(status=inspection.status)
    inspection.status = InspectionStatus.RECTIFYING
    inspection.rectify_by = local_instant(by + dt.timedelta(days=1), dt.time(0, 0))
    inspection.overdue = False  # a new day to keep
    inspection.note = note
    audit(
        session,
        "inspection.rectification_required",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="inspection",
        subject_id=inspection.id,
        details={"application_id": inspection.application_id, "by": by.isoformat()},
    )
    session.flush()


def revoke(
    session: Session,
    inspection: Inspection,
    content: Mapping[str, Any],
    *,
    staff_id: int,
    note: str,
    now: dt.datetime,
) -> CommitmentBreach:
    """The commitment was false: revoke the licence and exclude the holder for a while."""
    _close(session, inspection, InspectionStatus.REVOKED, staff_id=staff_id, note=note, now=now)
    application = session.get(Application, inspection.application_id)
    assert application is not None
    licence = session.scalars(
        select(Licence).where(Licence.application_id == application.id)
    ).first()
    if licence is not None:
        lock_row(session, licence)  # a reviewer may be revoking it at this moment
        if licence.status != LicenceStatus.REVOKED:
            licences.revoke(
                session,
                licence,
                reason=f"核查发现承诺不实：{note}",
                actor=Actor("staff", staff_id),
                now=now,
            )
    breach = CommitmentBreach(
        user_id=application.applicant_user_id,
        enterprise_id=application.enterprise_id,
        application_id=application.id,
        recorded_at=now,
        excluded_until=now + dt.timedelta(days=content["commitment"]["exclusion_days"]),
    )
    session.add(breach)
    session.flush()
    return breach

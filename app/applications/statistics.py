"""Per-matter figures for a department: how many were approved in seconds, how long decisions
took, how many ran past their statutory limit."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.applications.models import Application, ApplicationEvent, ApplicationStatus


@dataclass(frozen=True)
class MatterFigures:
    matter_code: str
    submitted: int
    decided: int
    approved_instantly: int
    approved_by_reviewer: int
    rejected: int
    withdrawn: int
    open: int
    overdue: int
    median_hours_to_decision: float | None

    @property
    def instant_share(self) -> float | None:
        return self.approved_instantly / self.decided if self.decided else None


def per_matter(
    session: Session,
    department_ids: Sequence[int] | None,
    *,
    since: dt.datetime,
    until: dt.datetime,
) -> list[MatterFigures]:
    """Figures of the applications submitted in [since, until), by matter."""
    conditions = [
        Application.submitted_at.is_not(None),
        Application.submitted_at >= since,
        Application.submitted_at < until,
    ]
    if department_ids is not None:
        conditions.append(Application.department_id.in_(department_ids))
    rows = session.execute(
        select(
            Application.id,
            Application.matter_code,
            Application.status,
            Application.submitted_at,
            Application.decided_at,
            Application.overdue,
        ).where(*conditions)
    ).all()
    instant_ids = set(
        session.scalars(
            select(ApplicationEvent.application_id).where(
                ApplicationEvent.action == "approve_instantly",
                ApplicationEvent.application_id.in_([r.id for r in rows]),
            )
        )
    )
    by_matter: dict[str, list] = {}  # type: ignore[type-arg]
    for row in rows:
        by_matter.setdefault(row.matter_code, []).append(row)
    out = []
    for code, items in sorted(by_matter.items()):
        decided = [
            r for r in items if r.decided_at is not None and r.status != ApplicationStatus.WITHDRAWN
        ]
        hours = [(r.decided_at - r.submitted_at).total_seconds() / 3600 for r in decided]
        instant = sum(1 for r in items if r.id in instant_ids)
        approved = sum(1 for r in items if r.status == ApplicationStatus.APPROVED)
        out.append(
            MatterFigures(
                matter_code=code,
                submitted=len(items),
                decided=len(decided),
                approved_instantly=instant,
                approved_by_reviewer=approved - instant,
                rejected=sum(1 for r in items if r.status == ApplicationStatus.REJECTED),
                withdrawn=sum(1 for r in items if r.status == ApplicationStatus.WITHDRAWN),
                open=sum(1 for r in items if r.decided_at is None),
                overdue=sum(1 for r in items if r.overdue),
                median_hours_to_decision=round(statistics.median(hours), 3) if hours else None,
            )
        )
    return out

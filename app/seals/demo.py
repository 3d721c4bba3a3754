"""Demo seals for a few demo departments (with the PKI created on first seed)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.organisation.models import Department
from app.seals import get_seal_context
from app.seals.lifecycle import create_seal
from app.seals.models import Seal, SealKind
from app.seals.pki import ensure_dev_pki

# (department code, kind, the templates it signs, the catalogue matters it signs for)
DEMO_SEALS: list[tuple[str, SealKind, list[str], list[str]]] = [
    # A department's approval seal also closes the application forms and commitment letters
    # its applicants sign.
    (
        "PY-QXJ",
        SealKind.APPROVAL,
        ["meteorological_certificate", "application_form"],
        ["PY-QXJ-QXZM"],
    ),
    (
        "PY-SWJ",
        SealKind.APPROVAL,
        ["drainage_permit", "application_form", "commitment_letter"],
        ["PY-SWJ-PSXK"],
    ),
    (
        "PY-CGJ",
        SealKind.APPROVAL,
        [
            "outdoor_advertising_permit",
            "construction_waste_permit",
            "application_form",
            "commitment_letter",
        ],
        ["PY-CGJ-LSGG", "PY-CGJ-JZLJ"],
    ),
    ("PY-ZSJ", SealKind.OFFICIAL, [], []),
    ("PY-ZSJ", SealKind.BUSINESS, ["commitment_letter"], ["commitment_letter"]),
]


def seed_seals(session: Session, *, actor: Actor, now: dt.datetime) -> int:
    """Create the missing demo seals; returns how many were created."""
    ctx = get_seal_context()
    ensure_dev_pki(ctx, now)
    departments = {d.code: d for d in session.scalars(select(Department))}
    existing = {(s.department_id, s.kind) for s in session.scalars(select(Seal))}
    created = 0
    for code, kind, templates, matters in DEMO_SEALS:
        department = departments.get(code)
        if department is None or (department.id, kind) in existing:
            continue
        create_seal(
            session,
            ctx,
            department=department,
            kind=kind,
            valid_until=now + dt.timedelta(days=365 * 3),
            authorised_roles=["reviewer"],
            authorised_templates=templates,
            # Signs for the catalogue's matters; the template keys stay for older callers.
            authorised_matters=sorted(set(templates) | set(matters)),
            actor=actor,
            now=now,
        )
        created += 1
    return created

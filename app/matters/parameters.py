"""Rule parameters: the thresholds and lists of a matter's rules, which staff set without
publishing a new version (the version's file gives the defaults). Every change is audited and
each decision records the values it used."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.audit.service import record as audit
from app.matters import rules
from app.matters.errors import MatterInvalid, ParameterNotFound
from app.matters.models import Matter, MatterParameter


def current_values(session: Session, matter: Matter, rule_set: rules.RuleSet) -> dict[str, Any]:
    """The version's defaults overlaid with what staff set (for parameters it still has)."""
    values = rule_set.defaults()
    for row in session.scalars(
        select(MatterParameter).where(MatterParameter.matter_id == matter.id)
    ):
        if row.name in values and rules.check_parameter_value(
            rule_set.parameters[row.name], row.value
        ):
            values[row.name] = row.value
    return values


def set_value(
    session: Session,
    matter: Matter,
    rule_set: rules.RuleSet,
    name: str,
    value: Any,
    *,
    staff_id: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """Set one parameter of the matter's current rules (audited with old and new value)."""
    spec = rule_set.parameters.get(name)
    if spec is None:
        raise ParameterNotFound(name=name)
    if not rules.check_parameter_value(spec, value):
        raise MatterInvalid(fields={"value": f"{spec['label']}的取值类型应为 {spec['kind']}"})
    row = session.scalars(
        select(MatterParameter).where(
            MatterParameter.matter_id == matter.id, MatterParameter.name == name
        )
    ).first()
    old = current_values(session, matter, rule_set)[name]
    if row is None:
        row = MatterParameter(
            matter_id=matter.id, name=name, value=value, updated_by=staff_id, updated_at=now
        )
        session.add(row)
    else:
        row.value, row.updated_by, row.updated_at = value, staff_id, now
    session.flush()
    audit(
        session,
        "matter.parameter_set",
        actor=Actor("staff", staff_id),
        now=now,
        subject_type="matter",
        subject_id=matter.id,
        details={"code": matter.code, "name": name, "old": old, "new": value},
    )
    return current_values(session, matter, rule_set)

"""A seal's life: created with its key, certificate and image; authorised for roles, templates
and matters, and checked before every use; suspended, reactivated or revoked."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.db import affected_rows
from app.organisation.models import Department
from app.seals import errors
from app.seals.context import SealContext
from app.seals.models import Seal, SealKey, SealKind, SealStatus, SealUse
from app.seals.templates import Template
from app.seals.trust import revoke_certificate, store_certificate
from seals import pki as pki_lib
from seals.image import SealDesign, png_bytes, render_seal
from seals.keys import ECDSA_P256


@dataclass(frozen=True)
class SealActor:
    """Who applies a seal: staff with their roles and department scopes, or the system
    (a rule-based approval) acting for a matter."""

    kind: str  # staff | system
    id: int | None = None
    roles: tuple[str, ...] = ()
    scopes: dict[str, list[int]] | None = None

    @property
    def audit_actor(self) -> Actor:
        return Actor(self.kind, self.id)


def list_seals(
    session: Session,
    *,
    department_id: int | None = None,
    status: SealStatus | None = None,
    within_departments: list[int] | None = None,
) -> list[Seal]:
    """Seals by id, filtered; `within_departments`: only those departments' (None: any)."""
    query = select(Seal).order_by(Seal.id)
    if department_id is not None:
        query = query.where(Seal.department_id == department_id)
    if status is not None:
        query = query.where(Seal.status == status)
    if within_departments is not None:
        query = query.where(Seal.department_id.in_(within_departments))
    return list(session.scalars(query))


def _new_seal_code(session: Session, department: Department, kind: SealKind) -> str:
    # 440113 (番禺区) + department id + kind digit + random digits: 13 digits like paper seals.
    digit = {"official": "1", "approval": "2", "business": "3"}[kind.value]
    while True:
        code = f"440113{department.id % 100:02d}{digit}{secrets.randbelow(10_000):04d}"
        if session.scalar(select(Seal.id).where(Seal.code == code)) is None:
            return code


def create_seal(
    session: Session,
    ctx: SealContext,
    *,
    department: Department,
    kind: SealKind,
    valid_until: dt.datetime,
    authorised_roles: list[str],
    authorised_templates: list[str],
    authorised_matters: list[str],
    actor: Actor,
    now: dt.datetime,
    provider: str | None = None,
) -> Seal:
    """A new seal: key pair in its provider, certificate from the issuing CA, image rendered."""
    provider_kind = provider or ctx.default_provider
    code = _new_seal_code(session, department, kind)
    key = ctx.provider(provider_kind).generate(f"seal-{code}", ECDSA_P256)
    public_key = ctx.provider(provider_kind).public_key(key)
    name = f"{department.name}{kind.label if kind != SealKind.OFFICIAL else ''}"
    cert = pki_lib.issue_seal_certificate(
        ctx.pki,
        ctx.software,
        public_key,
        seal_name=name,
        organisation=department.name,
        seal_kind_label=kind.label,
        seal_code=code,
        not_before=now - dt.timedelta(minutes=5),
        not_after=valid_until,
    )
    key_row = SealKey(
        provider=key.provider,
        ref=key.ref,
        algorithm=key.algorithm,
        public_key_pem=public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        wrapped=key.material or None,
    )
    session.add(key_row)
    session.flush()
    cert_row = store_certificate(session, cert, kind="seal", key_id=key_row.id)
    purpose = "" if kind == SealKind.OFFICIAL else kind.label
    image = render_seal(SealDesign(department.name, purpose, code), ctx.fonts)
    seal = Seal(
        code=code,
        department_id=department.id,
        kind=kind,
        name=name,
        purpose=purpose,
        status=SealStatus.ACTIVE,
        valid_from=now,
        valid_until=cert.not_valid_after_utc,
        key_id=key_row.id,
        certificate_id=cert_row.id,
        image_png=png_bytes(image),
        authorised_roles=sorted(set(authorised_roles)),
        authorised_templates=sorted(set(authorised_templates)),
        authorised_matters=sorted(set(authorised_matters)),
    )
    session.add(seal)
    session.flush()
    record(
        session,
        "seal.created",
        actor=actor,
        now=now,
        subject_type="seal",
        subject_id=seal.id,
        details={"code": code, "kind": kind.value, "provider": provider_kind},
    )
    return seal


_TRANSITIONS = {
    SealStatus.SUSPENDED: (SealStatus.ACTIVE,),
    SealStatus.ACTIVE: (SealStatus.SUSPENDED,),
    SealStatus.REVOKED: (SealStatus.ACTIVE, SealStatus.SUSPENDED),
}


def change_seal_status(
    session: Session,
    ctx: SealContext,
    seal: Seal,
    status: SealStatus,
    *,
    actor: Actor,
    now: dt.datetime,
    reason: str = "",
) -> Seal:
    """Suspend, reactivate or revoke a seal (revocation also revokes its certificate)."""
    allowed_from = _TRANSITIONS[status]
    # Guarded update: two admins acting at once cannot both move the seal from the same state.
    result = session.execute(
        update(Seal)
        .where(Seal.id == seal.id, Seal.status.in_(allowed_from))
        .values(status=status, status_changed_at=now)
    )
    if affected_rows(result) == 0:
        raise errors.SealStatusConflict(status=seal.status.value)
    session.refresh(seal)
    if status == SealStatus.REVOKED:
        revoke_certificate(session, ctx, seal.certificate_id, now=now)
    record(
        session,
        f"seal.{status.value}",
        actor=actor,
        now=now,
        subject_type="seal",
        subject_id=seal.id,
        details={"code": seal.code, "reason": reason[:200]},
    )
    session.flush()
    return seal


def _refuse(
    session: Session,
    seal: Seal,
    actor: SealActor,
    now: dt.datetime,
    reason: str,
    *,
    template: str,
    matter: str | None,
) -> None:
    session.add(
        SealUse(
            seal_id=seal.id,
            actor_kind=actor.kind,
            actor_id=actor.id,
            outcome="refused",
            reason=reason,
            used_at=now,
        )
    )
    record(
        session,
        "seal.use_refused",
        actor=actor.audit_actor,
        now=now,
        subject_type="seal",
        subject_id=seal.id,
        details={"code": seal.code, "reason": reason, "template": template, "matter": matter},
    )
    session.flush()


def may_apply(seal: Seal, actor: SealActor) -> bool:
    """The system acts for rule-based approvals; staff need an authorised role, and a reviewer's
    grant must cover the seal's department."""
    if actor.kind == "system":
        return True
    if actor.kind != "staff":
        return False
    for role in actor.roles:
        if role not in seal.authorised_roles:
            continue
        scope = (actor.scopes or {}).get(role)
        if scope is None or seal.department_id in scope:
            return True
    return False


def refusal_reason(
    seal: Seal, template: Template, *, actor: SealActor, matter: str | None
) -> str | None:
    """Why `actor` may not sign `template` for `matter` with `seal`, or None if they may.
    Whoever applies a seal, it signs only its own templates, for its own matters."""
    if not may_apply(seal, actor):
        return "not_authorised"
    if template.key not in seal.authorised_templates:
        return "template_not_authorised"
    if matter is None or matter not in seal.authorised_matters:
        return "matter_not_authorised"
    if template.matters and matter not in template.matters:
        return "matter_not_for_template"
    return None


def check_use(
    session: Session,
    seal: Seal,
    *,
    actor: SealActor,
    template: Template,
    matter: str | None,
    now: dt.datetime,
) -> None:
    """Refuse (recorded in the seal-use log and the audit log) unless `actor` may apply `seal`
    to `template` for `matter` now."""
    reason = refusal_reason(seal, template, actor=actor, matter=matter)
    if reason is not None:
        _refuse(session, seal, actor, now, reason, template=template.key, matter=matter)
        raise errors.SealUseForbidden(seal=seal.code, reason=reason)
    if seal.status != SealStatus.ACTIVE or not seal.valid_from <= now <= seal.valid_until:
        reason = seal.status.value if seal.status != SealStatus.ACTIVE else "expired"
        _refuse(session, seal, actor, now, reason, template=template.key, matter=matter)
        raise errors.SealNotUsable(seal=seal.code, reason=reason)

"""E-licences: issued from an approved application through the department's seal, listed in
the holder's wallet, shown at a counter with a short-lived QR (亮证), revoked.

A licence is the sealed document (`issue_document`) plus what a wallet and a counter need: its
type, holder, data and validity. Revoking it revokes the document, so the seal's public
verification and the licence QR both answer "revoked".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from app.audit.service import Actor
from app.audit.service import record as audit
from app.calendar import local_day, local_instant
from app.db import hold, lock_row
from app.enterprises.models import BindingStatus, EnterpriseBinding
from app.licences.errors import (
    LicenceAlreadyRevoked,
    LicenceCodeInvalid,
    LicenceNotFound,
    LicenceNotShowable,
)
from app.licences.models import Licence, LicenceStatus
from app.organisation.models import Department
from app.queueing.codes import open_compact, sign_compact
from app.queueing.errors import CodeExpired, CodeForged
from app.queueing.settings import QueueSettings
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor
from app.seals.models import DocumentStatus, IssuedDocument, Seal, SealStatus
from app.seals.registry import set_document_status

SHOW_SECONDS = 120
TOKEN_KIND = "L"  # nosec B105  # a token kind letter, not a password
_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[a-z_0-9]+)?)\}")


def licence_data(spec: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The template's fields from the matter's mapping: "{form.address}" is formatted from the
    facts, {"fact": name} copies one (a table)."""

    def fill(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            found = facts.get(match.group(1))
            if isinstance(found, float) and found.is_integer():
                found = int(found)
            return "" if found is None else str(found)

        return _PLACEHOLDER.sub(value, text)

    return {
        key: fill(item) if isinstance(item, str) else facts.get(item["fact"])
        for key, item in spec.items()
    }


def seal_for(
    session: Session, department_id: int, matter_code: str, template: str, *, now: dt.datetime
) -> Seal | None:
    """The department's seal authorised for this matter and template, one usable `now` first
    (active, within its validity): a department that revoked a seal and made a new one, or
    made the next one ahead of an expiry, signs with that one. Without a usable seal, the
    first authorised one, so that signing refuses it with its reason (revoked, suspended,
    expired) in the seal-use log. With its key and certificate, which signing reads: one
    statement instead of three."""
    authorised = [
        seal
        for seal in session.scalars(
            select(Seal)
            .where(Seal.department_id == department_id)
            .options(joinedload(Seal.key), joinedload(Seal.certificate))
            .order_by(Seal.id)
        )
        if matter_code in seal.authorised_matters and template in seal.authorised_templates
    ]
    usable = (
        seal
        for seal in authorised
        if seal.status == SealStatus.ACTIVE and seal.valid_from <= now <= seal.valid_until
    )
    return next(usable, authorised[0] if authorised else None)


def _valid_until(
    licence_spec: Mapping[str, Any], facts: Mapping[str, Any], now: dt.datetime
) -> dt.datetime | None:
    """The end of the licence's validity (exclusive, local midnight): through the date the
    form names (`valid_through`, a permit for the period applied for), else `valid_days` from
    the day of issue; None: without end."""
    through = licence_spec.get("valid_through")
    if through is not None:
        # The form was validated against its schema: a required ISO date.
        last_day = dt.date.fromisoformat(str(facts[through]))
        return local_instant(last_day + dt.timedelta(days=1), dt.time(0, 0))
    valid_days = licence_spec.get("valid_days")
    if not valid_days:
        return None
    return local_instant(local_day(now) + dt.timedelta(days=valid_days), dt.time(0, 0))


def issue(
    session: Session,
    ctx: SealContext,
    *,
    seal: Seal,
    licence_spec: Mapping[str, Any],
    matter_code: str,
    holder: Holder,
    holder_enterprise_id: int | None,
    facts: Mapping[str, Any],
    actor: SealActor,
    application_id: int,
    application_number: str,
    now: dt.datetime,
    request_id: str | None = None,
) -> Licence:
    """Seal the licence document and register the licence."""
    data = licence_data(licence_spec.get("data", {}), facts)
    document = issue_document(
        session,
        ctx,
        seal=seal,
        template=licence_spec["template"],
        holder=holder,
        data=data,
        actor=actor,
        now=now,
        matter=matter_code,
        request_id=request_id,
        # One licence per application, whoever retries.
        idempotency_key=f"application:{application_number}",
    )
    valid_until = _valid_until(licence_spec, facts, now)
    licence = Licence(
        number=document.number,
        template=document.template,
        title=licence_spec["title"],
        matter_code=matter_code,
        holder_kind=holder.kind,
        holder_user_id=holder.user_id if holder.kind == "person" else None,
        holder_enterprise_id=holder_enterprise_id,
        holder_masked=holder.masked,
        data={k: v for k, v in data.items() if isinstance(v, str)},
        valid_from=now,
        valid_until=valid_until,
        status=LicenceStatus.VALID,
        document_id=document.id,
        application_id=application_id,
        created_at=now,
    )
    session.add(licence)
    session.flush()
    # The answer names the document (its verification code): kept for its lookup.
    hold(session, document)
    return licence


def _wallet_filter(session: Session, user_id: int) -> Any:
    enterprises = select(EnterpriseBinding.enterprise_id).where(
        EnterpriseBinding.user_id == user_id, EnterpriseBinding.status == BindingStatus.ACTIVE
    )
    return or_(Licence.holder_user_id == user_id, Licence.holder_enterprise_id.in_(enterprises))


def wallet(session: Session, user_id: int) -> list[Licence]:
    """The user's own licences and those of the enterprises they act for, newest first."""
    return list(
        session.scalars(
            select(Licence).where(_wallet_filter(session, user_id)).order_by(Licence.id.desc())
        )
    )


def licence_in_wallet(session: Session, user_id: int, licence_id: int) -> Licence:
    """One licence of the user's wallet; another's is not found (never "forbidden")."""
    found = session.scalars(
        select(Licence).where(Licence.id == licence_id, _wallet_filter(session, user_id))
    ).first()
    if found is None:
        raise LicenceNotFound(licence_id=licence_id)
    return found


@dataclass(frozen=True)
class ShowCode:
    token: str
    expires_at: dt.datetime


def show_code(settings: QueueSettings, licence: Licence, *, now: dt.datetime) -> ShowCode:
    """A QR token a counter scans to check the licence, valid for SHOW_SECONDS."""
    if licence.state(now) != "valid":
        raise LicenceNotShowable(status=licence.state(now))
    expires = int(now.timestamp()) + SHOW_SECONDS
    token = sign_compact(settings, TOKEN_KIND, licence.id, expires)
    return ShowCode(token, dt.datetime.fromtimestamp(expires, dt.UTC))


@dataclass(frozen=True)
class Verified:
    licence: Licence
    document: IssuedDocument
    issuer: str
    status: str  # valid | expired | revoked


def verify_code(
    session: Session, settings: QueueSettings, token: str, *, now: dt.datetime
) -> Verified:
    """What a counter sees on scanning a licence QR: the licence and its status now."""
    try:
        licence_id, expires = open_compact(settings, token, TOKEN_KIND, 2)
    except CodeForged:
        raise LicenceCodeInvalid() from None
    if now.timestamp() > expires:
        raise CodeExpired("亮证二维码已过期，请持证人刷新")
    licence = session.get(Licence, licence_id)
    if licence is None:
        raise LicenceNotFound()
    document = licence.document
    department = session.get(Department, document.seal.department_id)
    return Verified(licence, document, department.name if department else "", licence.state(now))


def revoke(
    session: Session,
    licence: Licence,
    *,
    reason: str,
    actor: Actor,
    now: dt.datetime,
) -> Licence:
    """Revoke the licence and its sealed document (audited).

    The licence's row is locked first: a reviewer's revoke and a 核查's revoke of the same licence
    may cross, and the later one must see the first's revocation (409), not revoke again."""
    lock_row(session, licence)
    if licence.status == LicenceStatus.REVOKED:
        raise LicenceAlreadyRevoked(number=licence.number)
    licence.status = LicenceStatus.REVOKED
    licence.revoked_at = now
    licence.revoke_reason = reason
    document = session.get(IssuedDocument, licence.document_id)
    if document is not None and document.status == DocumentStatus.VALID:
        set_document_status(session, document, DocumentStatus.REVOKED, now=now, reason=reason)
    audit(
        session,
        "licence.revoked",
        actor=actor,
        now=now,
        subject_type="licence",
        subject_id=licence.id,
        details={"number": licence.number, "reason": reason},
    )
    session.flush()
    return licence

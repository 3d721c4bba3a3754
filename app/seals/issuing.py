"""Issuing a document: the one call that turns a decision into a sealed, registered PDF.

`issue_document` is what a later capability (instant approval) needs to turn a decision into
a sealed permit: it checks the actor may use the seal for this template and matter, checks the
holder and data against the template, renders the PDF, signs it (after the
applicant's own signature for letters), stores it, registers it and records the use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.service import record
from app.calendar import local_day
from app.identity.assurance import require_level
from app.organisation.models import Department
from app.seals import errors
from app.seals.context import SealContext
from app.seals.lifecycle import SealActor, check_use
from app.seals.models import DocumentStatus, IssuedDocument, Seal, SealUse
from app.seals.registry import set_document_status
from app.seals.signatures import PersonalSignature, sign_document
from app.seals.templates import Template, get_template, render_values, validate_request
from app.seals.trust import trust_settings
from app.security import get_cipher
from app.security.crypto import FieldCipher
from app.security.masking import mask_id_number, mask_name
from seals.codes import new_document_id
from seals.documents import DocumentSpec, render_document


@dataclass(frozen=True)
class Holder:
    """Whom a document is issued to, as printed."""

    name: str
    id_number: str = ""
    kind: str = "enterprise"  # enterprise | person
    user_id: int | None = None

    @property
    def printed_id(self) -> str:
        return (
            mask_id_number(self.id_number)
            if self.kind == "person" and self.id_number
            else self.id_number
        )

    @property
    def masked(self) -> str:
        return mask_name(self.name) if self.kind == "person" else self.name


def issue_document(
    session: Session,
    ctx: SealContext,
    *,
    seal: Seal,
    template: str,
    holder: Holder,
    data: dict[str, Any],
    actor: SealActor,
    now: dt.datetime,
    matter: str | None = None,
    personal: PersonalSignature | None = None,
    cipher: FieldCipher | None = None,
    supersedes: IssuedDocument | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> IssuedDocument:
    """Render, sign (applicant first for letters, then the seal), store and register a document.

    With an `idempotency_key` (the client's, scoped here to the actor), a repeated request
    returns the document the first one issued; the same key with other content is refused.
    """
    scoped_key = fingerprint = None
    if idempotency_key:
        scoped_key = _scoped_key(actor, idempotency_key)
        fingerprint = _request_fingerprint(
            seal=seal,
            template=template,
            holder=holder,
            data=data,
            matter=matter,
            personal=personal,
            supersedes=supersedes,
            cipher=cipher or get_cipher(),
        )
        earlier = _issued_with_key(session, scoped_key, fingerprint)
        if earlier is not None:
            return earlier

    document_template = get_template(template)
    check_use(session, seal, actor=actor, template=document_template, matter=matter, now=now)
    validate_request(document_template, holder, data)
    if document_template.personal_signature and (personal is None or cipher is None):
        raise errors.SignerNotVerified("该文书需要申请人本人签名")
    if personal is not None:
        # A signature in a person's name needs the real-name service's word, not a check digit.
        require_level(session, personal.user, "document.sign", now=now, request_id=request_id)

    public_id = _unique_public_id(session)
    spec = _document_spec(
        session, ctx, seal, document_template, holder, data, public_id=public_id, now=now
    )
    rendered = render_document(spec, ctx.fonts)
    signed = sign_document(
        session,
        ctx,
        rendered,
        seal,
        personal=personal,
        cipher=cipher,
        trust=trust_settings(session, ctx, now),
        now=now,
    )
    storage_key = _store(ctx, public_id, signed)
    document = IssuedDocument(
        public_id=public_id,
        template=template,
        title=document_template.title,
        number=spec.number,
        seal_id=seal.id,
        holder_masked=holder.masked,
        holder_user_id=holder.user_id,
        matter=matter,
        sha256=hashlib.sha256(signed).hexdigest(),
        size_bytes=len(signed),
        storage_key=storage_key,
        personal_signature=personal is not None,
        status=DocumentStatus.VALID,
        issued_at=now,
        issued_by_kind=actor.kind,
        issued_by_id=actor.id,
        details={"issuer": spec.issuer, "seal_code": seal.code},
        idempotency_key=scoped_key,
        request_fingerprint=fingerprint,
    )
    registered = _register(session, ctx, document)
    if registered is not document:
        return registered  # a concurrent retry with the same key registered its document first

    if supersedes is not None:
        set_document_status(
            session,
            supersedes,
            DocumentStatus.SUPERSEDED,
            now=now,
            reason=f"由{public_id}替代",
            superseded_by=document.id,
        )
    _record_use(session, document, seal=seal, actor=actor, now=now, request_id=request_id)
    session.flush()
    return document


# ---------------------------------------------------------------- the steps


def _document_spec(
    session: Session,
    ctx: SealContext,
    seal: Seal,
    template: Template,
    holder: Holder,
    data: dict[str, Any],
    *,
    public_id: str,
    now: dt.datetime,
) -> DocumentSpec:
    """What the document prints: the template filled in, its number, issuer and QR code."""
    code = ctx.codes.code_for(public_id)
    fields, paragraphs, table = render_values(template, data)
    issued_on = local_day(now)
    department = session.get(Department, seal.department_id)
    return DocumentSpec(
        title=template.title,
        number=f"{template.number_prefix}〔{issued_on.year}〕{public_id}号",
        issuer=department.name if department else seal.name,
        issued_on=issued_on,
        fields=[
            (template.holder_label, holder.name),
            (template.id_label, holder.printed_id),
            *fields,
        ],
        paragraphs=paragraphs,
        table=table,
        verify_url=ctx.verify_url(code),
        verify_code=code,
        signer_box=template.personal_signature,
        signer_label=template.holder_label,
    )


def _unique_public_id(session: Session) -> str:
    while True:
        public_id = new_document_id()
        taken = session.scalar(
            select(IssuedDocument.id).where(IssuedDocument.public_id == public_id)
        )
        if taken is None:
            return public_id


def _store(ctx: SealContext, public_id: str, signed: bytes) -> str:
    """Write the signed PDF where downloads are served from; returns its storage key."""
    storage_key = f"{public_id}.pdf"
    ctx.storage_dir.mkdir(parents=True, exist_ok=True)
    (ctx.storage_dir / storage_key).write_bytes(signed)
    return storage_key


def _register(session: Session, ctx: SealContext, document: IssuedDocument) -> IssuedDocument:
    """Add `document` to the register, or return the one a concurrent retry with the same
    idempotency key registered first (and delete our file)."""
    try:
        with session.begin_nested():
            session.add(document)
            session.flush()
    except IntegrityError:
        key = document.idempotency_key
        if key is None or (
            session.scalar(select(IssuedDocument.id).where(IssuedDocument.idempotency_key == key))
            is None
        ):
            raise
        (ctx.storage_dir / document.storage_key).unlink(missing_ok=True)
        earlier = _issued_with_key(session, key, document.request_fingerprint)
        assert earlier is not None
        return earlier
    return document


def _record_use(
    session: Session,
    document: IssuedDocument,
    *,
    seal: Seal,
    actor: SealActor,
    now: dt.datetime,
    request_id: str | None,
) -> None:
    """The seal-use log entry and the audit entry of a signed document."""
    session.add(
        SealUse(
            seal_id=seal.id,
            document_id=document.id,
            actor_kind=actor.kind,
            actor_id=actor.id,
            document_sha256=document.sha256,
            outcome="signed",
            used_at=now,
        )
    )
    record(
        session,
        "seal.used",
        actor=actor.audit_actor,
        now=now,
        subject_type="issued_document",
        subject_id=document.public_id,
        details={
            "seal": seal.code,
            "template": document.template,
            "sha256": document.sha256,
            "matter": document.matter,
            "personal_signature": document.personal_signature,
        },
        request_id=request_id,
    )


# ---------------------------------------------------------------- idempotency


def _scoped_key(actor: SealActor, idempotency_key: str) -> str:
    """The client's key scoped to the actor: two clients choosing the same key do not meet."""
    return f"{actor.kind}:{actor.id if actor.id is not None else '-'}:{idempotency_key}"


def _request_fingerprint(
    *,
    seal: Seal,
    template: str,
    holder: Holder,
    data: dict[str, Any],
    matter: str | None,
    personal: PersonalSignature | None,
    supersedes: IssuedDocument | None,
    cipher: FieldCipher,
) -> str:
    """A hash of what was asked for, keyed because the holder's name and ID number are in it."""
    request = {
        "seal": seal.id,
        "template": template,
        "holder": [holder.name, holder.id_number, holder.kind, holder.user_id],
        "data": data,
        "matter": matter,
        "signer": personal.user.id if personal is not None else None,
        "handwriting": (
            hashlib.sha256(personal.handwriting_png).hexdigest() if personal is not None else None
        ),
        "supersedes": supersedes.id if supersedes is not None else None,
    }
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return cipher.blind_index(canonical, context="seal-issue-request")


def _issued_with_key(
    session: Session, scoped_key: str, fingerprint: str | None
) -> IssuedDocument | None:
    """The document an earlier request with this key issued; refused if it asked otherwise."""
    earlier = session.scalars(
        select(IssuedDocument).where(IssuedDocument.idempotency_key == scoped_key)
    ).first()
    if earlier is not None and earlier.request_fingerprint != fingerprint:
        raise errors.IdempotencyKeyReused()
    return earlier

"""The register of issued documents: a document found by its verification code, its status
(its seal's revocation counted), what anyone holding the code may see, and revocation."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.seals import errors
from app.seals.context import SealContext
from app.seals.models import DocumentStatus, IssuedDocument


def set_document_status(
    session: Session,
    document: IssuedDocument,
    status: DocumentStatus,
    *,
    now: dt.datetime,
    reason: str,
    superseded_by: int | None = None,
) -> None:
    """Move a valid document to `status` (revoked, or superseded by another)."""
    # A guarded update, checked by its row count: only a valid document changes.
    result = cast(
        CursorResult[Any],
        session.execute(
            update(IssuedDocument)
            .where(IssuedDocument.id == document.id, IssuedDocument.status == DocumentStatus.VALID)
            .values(
                status=status,
                status_changed_at=now,
                status_reason=reason[:255],
                superseded_by_id=superseded_by,
            )
        ),
    )
    if result.rowcount == 0:
        raise errors.DocumentStatusConflict(status=document.status.value)
    session.refresh(document)


def revoke_document(
    session: Session, document: IssuedDocument, *, actor: Actor, now: dt.datetime, reason: str
) -> IssuedDocument:
    """Mark a document revoked in the registry (verification then reports it)."""
    set_document_status(session, document, DocumentStatus.REVOKED, now=now, reason=reason)
    record(
        session,
        "document.revoked",
        actor=actor,
        now=now,
        subject_type="issued_document",
        subject_id=document.public_id,
        details={"reason": reason[:200]},
    )
    return document


def document_pdf(ctx: SealContext, document: IssuedDocument) -> bytes:
    """The signed PDF as issued."""
    return (ctx.storage_dir / document.storage_key).read_bytes()


def get_document(session: Session, public_id: str) -> IssuedDocument:
    document = session.scalar(select(IssuedDocument).where(IssuedDocument.public_id == public_id))
    if document is None:
        raise errors.DocumentNotFound()
    return document


def find_by_code(session: Session, ctx: SealContext, code: str) -> IssuedDocument:
    """The document a verification code names; a forged tag is refused before any query."""
    public_id = ctx.codes.document_id(code)
    if public_id is None:
        raise errors.DocumentNotFound()
    return get_document(session, public_id)


def public_view(document: IssuedDocument, ctx: SealContext) -> dict[str, Any]:
    """What anyone holding the code may see: no personal data beyond the masked holder."""
    seal = document.seal
    return {
        "document_id": document.public_id,
        "type": document.title,
        "template": document.template,
        "number": document.number,
        "issuer": document.details.get("issuer", ""),
        "seal": {
            "code": seal.code,
            "name": seal.name,
            "kind": seal.kind.value,
            "status": seal.status.value,
        },
        "issued_at": document.issued_at,
        "holder": document.holder_masked,
        "sha256": document.sha256,
        "status": document.effective_status(),
        "status_changed_at": document.status_changed_at,
        "personal_signature": document.personal_signature,
        "verify_url": ctx.verify_url(ctx.codes.code_for(document.public_id)),
    }

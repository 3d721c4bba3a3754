"""Verifying an uploaded PDF: its signatures checked against our trust roots and current
CRLs, and the file looked up in the register of issued documents."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.seals import errors
from app.seals.context import SealContext
from app.seals.models import IssuedDocument, Seal, SealCertificate
from app.seals.trust import trust_settings
from seals.verify import VerificationInputError, verify_pdf


def verify_upload(
    session: Session, ctx: SealContext, data: bytes, *, now: dt.datetime
) -> dict[str, Any]:
    """Validate an uploaded PDF's signatures and look it up in the registry.

    A file that is not a PDF, or a PDF without signatures, is a verdict like any other (status
    `not_pdf` / `unsigned`): the person checking a document learns it proves nothing.
    """
    try:
        report = verify_pdf(data, trust_settings(session, ctx, now), max_bytes=ctx.max_upload_bytes)
    except VerificationInputError as exc:
        if exc.code == "too_large":
            raise errors.UploadTooLarge(limit_bytes=ctx.max_upload_bytes) from None
        verdict = "unsigned" if exc.code == "no_signatures" else "not_pdf"
        return {
            "status": verdict,
            "signatures_status": verdict,
            "sha256": hashlib.sha256(data).hexdigest(),
            "signatures": [],
            "registry": {"found": False, "matches": False},
        }
    document = session.scalar(select(IssuedDocument).where(IssuedDocument.sha256 == report.sha256))
    registry: dict[str, Any] = {"found": document is not None, "matches": document is not None}
    if document is not None:
        registry.update(
            document_id=document.public_id,
            status=document.effective_status(),
            number=document.number,
        )
    else:
        serials = [s.certificate_serial for s in report.signatures if s.certificate_serial]
        seal = (
            session.scalar(
                select(Seal)
                .join(SealCertificate, Seal.certificate_id == SealCertificate.id)
                .where(SealCertificate.serial_hex.in_(serials))
            )
            if serials
            else None
        )
        registry["seal_code"] = seal.code if seal else None
    status = report.status
    if status == "valid":
        if document is None:
            status = "unregistered"
        elif registry["status"] != "valid":
            status = registry["status"]
    return {
        "status": status,
        "signatures_status": report.status,
        "sha256": report.sha256,
        "signatures": [s.as_dict() for s in report.signatures],
        "registry": registry,
    }

"""Validate a PDF's signatures with pyHanko against the project's trust roots.

Each signature is reported with its signer, time, integrity, trust, and how much of the file it
covers. The file as a whole is `valid` only when every signature is intact, cryptographically
valid and trusted, and nothing but validation data (DSS, document timestamps) was added after
the last one; `tampered` when a signed byte changed; `modified` when content was added or
changed after signing in a way the signatures do not allow; `untrusted` when a signature is
intact but does not chain to our roots.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
    TimestampSignatureStatus,
)

from seals.signing import TrustSettings

log = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF-"


class VerificationInputError(ValueError):
    """The upload cannot be verified at all; `code` says why."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


@dataclass
class SignatureReport:
    field_name: str
    signer: str
    signer_organisation: str
    certificate_serial: str
    signing_time: dt.datetime | None
    time_source: str  # "timestamp" or "signer" (the signer's own claim)
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_document: bool
    certification: bool
    modification: str  # none | lta_updates | form_filling | annotations | other
    docmdp_ok: bool | None
    status: str  # valid | tampered | untrusted | modified | invalid

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VerificationReport:
    status: str  # valid | tampered | modified | untrusted | invalid
    sha256: str
    signatures: list[SignatureReport] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.status == "valid"


_LEVELS = {
    ModificationLevel.NONE: "none",
    ModificationLevel.LTA_UPDATES: "lta_updates",
    ModificationLevel.FORM_FILLING: "form_filling",
    ModificationLevel.ANNOTATIONS: "annotations",
    ModificationLevel.OTHER: "other",
}
_SEVERITY = ["valid", "untrusted", "invalid", "modified", "tampered"]


def _subject(cert: Any, key: str) -> str:
    try:
        return str(cert.subject.native.get(key, ""))
    except (AttributeError, ValueError):
        return ""


def _is_certification(sig: Any) -> bool:
    references = sig.sig_object.get("/Reference", [])
    return any(str(ref.get_object().get("/TransformMethod")) == "/DocMDP" for ref in references)


def _is_document_timestamp(sig: Any) -> bool:
    return str(sig.sig_object_type) == "/DocTimeStamp"


def _check_one(sig: Any, trust: TrustSettings, is_last: bool) -> SignatureReport:
    doc_timestamp = _is_document_timestamp(sig)
    moment = None if doc_timestamp else sig.self_reported_timestamp
    status: PdfSignatureStatus | DocumentTimestampStatus
    try:
        if doc_timestamp:
            # A PAdES B-LTA document timestamp: a TSA's token over the file so far.
            status = validate_pdf_timestamp(sig, validation_context=trust.context())
        else:
            # Validated as of the signing time: a short-lived event certificate or an expired
            # seal certificate still proves who signed when (PAdES long-term validation).
            status = validate_pdf_signature(sig, trust.context(moment=moment))
    except (SignatureValidationError, PdfError, ValueError, KeyError) as exc:
        log.info("signature validation failed: %s", type(exc).__name__)
        return SignatureReport(
            field_name=str(sig.field_name),
            signer="",
            signer_organisation="",
            certificate_serial="",
            signing_time=moment,
            time_source="signer",
            intact=False,
            valid=False,
            trusted=False,
            covers_whole_document=False,
            certification=False,
            modification="other",
            docmdp_ok=False,
            status="tampered",
        )
    cert = status.signing_cert
    timestamp: TimestampSignatureStatus | None
    docmdp_ok: bool | None
    if isinstance(status, PdfSignatureStatus):
        timestamp, docmdp_ok = status.timestamp_validity, status.docmdp_ok
    else:  # a document timestamp is its own time source and carries no DocMDP
        timestamp, docmdp_ok = status, None
    signing_time = timestamp.timestamp if timestamp is not None else moment
    modification = (
        _LEVELS.get(status.modification_level, "other") if status.modification_level else "none"
    )
    # Validation data (DSS, document timestamps) added after signing is part of PAdES B-LT and
    # does not change what the signature covers.
    covers_all = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and status.modification_level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)
    )
    if not status.intact:
        verdict = "tampered"
    elif not status.valid:
        verdict = "invalid"
    elif docmdp_ok is False or status.modification_level == ModificationLevel.OTHER:
        verdict = "modified"
    elif is_last and not covers_all:
        # Earlier signatures may see later signatures and form filling their DocMDP level
        # allows; after the last one only validation data may follow.
        verdict = "modified"
    elif not status.trusted:
        verdict = "untrusted"
    else:
        verdict = "valid"
    return SignatureReport(
        field_name=str(sig.field_name),
        signer=_subject(cert, "common_name"),
        signer_organisation=_subject(cert, "organization_name"),
        certificate_serial=format(cert.serial_number, "x"),
        signing_time=signing_time,
        time_source="timestamp" if timestamp is not None else "signer",
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_document=covers_all,
        certification=_is_certification(sig),
        modification=modification,
        docmdp_ok=docmdp_ok,
        status=verdict,
    )


def verify_pdf(
    data: bytes, trust: TrustSettings, *, max_bytes: int | None = None
) -> VerificationReport:
    """Validate every signature in `data`; raises VerificationInputError for unusable input."""
    if max_bytes is not None and len(data) > max_bytes:
        raise VerificationInputError("too_large")
    if not data.lstrip()[:5] == PDF_MAGIC:
        raise VerificationInputError("not_pdf")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = list(reader.embedded_signatures)
    except (
        PdfError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        RecursionError,
    ) as exc:
        log.info("unreadable PDF upload: %s", type(exc).__name__)
        raise VerificationInputError("not_pdf") from None
    if not signatures:
        raise VerificationInputError("no_signatures")
    reports = []
    # Document timestamps (B-LTA) may follow the last signature; what that signature must
    # cover is checked on the last signature that is not one.
    regular = [i for i, sig in enumerate(signatures) if not _is_document_timestamp(sig)]
    if not regular:
        raise VerificationInputError("no_signatures")  # a timestamp alone signs nothing
    last = regular[-1]
    for index, sig in enumerate(signatures):
        try:
            reports.append(_check_one(sig, trust, index >= last))
        except Exception as exc:
            log.info("signature could not be analysed: %s", type(exc).__name__)
            reports.append(
                SignatureReport(
                    str(getattr(sig, "field_name", "")),
                    "",
                    "",
                    "",
                    None,
                    "signer",
                    False,
                    False,
                    False,
                    False,
                    False,
                    "other",
                    False,
                    "tampered",
                )
            )
    worst = max((r.status for r in reports), key=_SEVERITY.index)
    return VerificationReport(
        status=worst, sha256=hashlib.sha256(data).hexdigest(), signatures=reports
    )

"""Trust in our signatures: the certificates we issue, their revocation, CRLs and the trust
settings every signature is made and checked with."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.seals import errors
from app.seals.context import SealContext
from app.seals.models import SealCertificate
from seals import pki as pki_lib
from seals.signing import TrustSettings

CRL_CACHE_SECONDS = 600


def store_certificate(
    session: Session, cert: x509.Certificate, *, kind: str, key_id: int | None
) -> SealCertificate:
    """Register a certificate we issued (a seal's, or an applicant's one-event certificate)."""
    row = SealCertificate(
        kind=kind,
        serial_hex=format(cert.serial_number, "x"),
        subject=cert.subject.rfc4514_string()[:255],
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        pem=pki_lib.certificate_pem(cert),
        key_id=key_id,
    )
    session.add(row)
    session.flush()
    return row


def revoke_certificate(
    session: Session, ctx: SealContext, certificate_id: int, *, now: dt.datetime
) -> None:
    """Put a certificate on the next CRL (a revoked seal's: it will never sign again)."""
    cert = session.get(SealCertificate, certificate_id)
    if cert is not None and cert.revoked_at is None:
        cert.revoked_at = now
        cert.revocation_reason = "cessationOfOperation"
    ctx.crl_cache.clear()


def _revoked(session: Session) -> list[pki_lib.Revoked]:
    rows = session.execute(
        select(SealCertificate.serial_hex, SealCertificate.revoked_at).where(
            SealCertificate.revoked_at.is_not(None)
        )
    ).all()
    return [
        pki_lib.Revoked(int(serial, 16), revoked_at)
        for serial, revoked_at in rows
        if revoked_at is not None  # always, by the query; the column type cannot say so
    ]


def current_crl(
    session: Session, ctx: SealContext, name: str, now: dt.datetime
) -> x509.CertificateRevocationList:
    """The CRL `name` ("issuing" or "root"), rebuilt when revocations change or it ages."""
    if name == pki_lib.ISSUING_CRL_NAME:
        ca = ctx.pki.issuing
        version = session.scalar(
            select(func.count(SealCertificate.id)).where(SealCertificate.revoked_at.is_not(None))
        )
    elif name == pki_lib.ROOT_CRL_NAME and ctx.pki.root_ca is not None:
        ca, version = ctx.pki.root_ca, 0
    else:
        raise errors.DocumentNotFound()
    cached = ctx.crl_cache.get(name)
    if (
        cached is not None
        and cached[0] == version
        and (now - cached[1]).total_seconds() < CRL_CACHE_SECONDS
    ):
        return cached[2]
    revoked = _revoked(session) if name == pki_lib.ISSUING_CRL_NAME else []
    crl = pki_lib.build_crl(ca, ctx.software, revoked, now=now)
    ctx.crl_cache[name] = (version, now, crl)
    return crl


def trust_settings(session: Session, ctx: SealContext, now: dt.datetime) -> TrustSettings:
    """Our roots, intermediates and current CRLs, as signing and verification use them."""
    crls = [current_crl(session, ctx, pki_lib.ISSUING_CRL_NAME, now)]
    if ctx.pki.root_ca is not None:
        crls.append(current_crl(session, ctx, pki_lib.ROOT_CRL_NAME, now))
    # The same CRL objects come back from the cache until revocations change, so the
    # settings (and their parsed certificates and CRLs) are reused across documents.
    key = (id(ctx.pki), *(id(crl) for crl in crls))
    cached = ctx.trust_cache.get("current")
    if cached is not None and cached[0] == key:
        return cached[1]
    trust = TrustSettings(
        roots=[ctx.pki.root], intermediates=[ctx.pki.issuing.certificate], crls=crls
    )
    ctx.trust_cache["current"] = (key, trust)  # holds the CRLs, so their ids stay unique
    return trust

"""Seal services: create and manage seals, issue signed documents, verify them.

`issue_document` is the one call a later capability (instant approval) needs to turn a decision
into a sealed permit: it checks the actor may use the seal, renders the PDF, signs it (after the
applicant's own signature for letters), stores it, registers it and records the use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image, UnidentifiedImageError
from pyhanko.sign.fields import MDPPerm, SigFieldSpec
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.identity.models import User
from app.identity.realname import id_number_of, real_name_of
from app.organisation.models import Department
from app.seals import errors
from app.seals.context import SealContext
from app.seals.models import (
    DocumentStatus,
    IssuedDocument,
    Seal,
    SealCertificate,
    SealKey,
    SealKind,
    SealStatus,
    SealUse,
)
from app.seals.templates import get_template, render_values
from app.security import get_cipher
from app.security.crypto import FieldCipher
from app.security.masking import mask_id_number, mask_name
from seals import pki as pki_lib
from seals.documents import DocumentSpec, handwriting_to_rgba, render_document
from seals.image import SealDesign, png_bytes, render_seal
from seals.keys import ECDSA_P256, KeyRef, SoftwareKeyProvider
from seals.signing import Appearance, PreparedImage, ProviderSigner, TrustSettings, sign_pdf
from seals.verify import VerificationInputError, verify_pdf

CHINA_TZ = dt.timezone(dt.timedelta(hours=8))
SEAL_FIELD = "DepartmentSeal"
SIGNER_FIELD = "ApplicantSignature"
CRL_CACHE_SECONDS = 600
MAX_HANDWRITING_BYTES = 512 * 1024


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


@dataclass(frozen=True)
class PersonalSignature:
    """The applicant's own signature: their handwriting and their verified identity."""

    user: User
    handwriting_png: bytes


# ---------------------------------------------------------------- seals


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
    cert_row = _store_certificate(session, cert, kind="seal", key_id=key_row.id)
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


def _store_certificate(
    session: Session, cert: x509.Certificate, *, kind: str, key_id: int | None
) -> SealCertificate:
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
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise errors.SealStatusConflict(status=seal.status.value)
    session.refresh(seal)
    if status == SealStatus.REVOKED:
        cert = session.get(SealCertificate, seal.certificate_id)
        if cert is not None and cert.revoked_at is None:
            cert.revoked_at = now
            cert.revocation_reason = "cessationOfOperation"
        ctx.crl_cache.clear()
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
        details={"code": seal.code, "reason": reason, "matter": matter},
    )
    session.flush()


def check_use(
    session: Session, seal: Seal, *, actor: SealActor, matter: str | None, now: dt.datetime
) -> None:
    """Refuse (recorded) unless `actor` may apply `seal` now."""
    if actor.kind == "system":
        allowed = matter is not None and matter in seal.authorised_matters
    elif actor.kind == "staff":
        allowed = False
        for role in actor.roles:
            if role not in seal.authorised_roles:
                continue
            scope = (actor.scopes or {}).get(role)
            if scope is None or seal.department_id in scope:
                allowed = True
                break
    else:
        allowed = False
    if not allowed:
        _refuse(session, seal, actor, now, "not_authorised", matter)
        raise errors.SealUseForbidden(seal=seal.code)
    if seal.status != SealStatus.ACTIVE or not seal.valid_from <= now <= seal.valid_until:
        reason = seal.status.value if seal.status != SealStatus.ACTIVE else "expired"
        _refuse(session, seal, actor, now, reason, matter)
        raise errors.SealNotUsable(seal=seal.code, reason=reason)


# ---------------------------------------------------------------- trust and CRLs


def _revoked(session: Session) -> list[pki_lib.Revoked]:
    rows = session.execute(
        select(SealCertificate.serial_hex, SealCertificate.revoked_at).where(
            SealCertificate.revoked_at.is_not(None)
        )
    ).all()
    return [pki_lib.Revoked(int(serial, 16), revoked_at) for serial, revoked_at in rows]


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
        return cached[2]  # type: ignore[no-any-return]
    revoked = _revoked(session) if name == pki_lib.ISSUING_CRL_NAME else []
    crl = pki_lib.build_crl(ca, ctx.software, revoked, now=now)
    ctx.crl_cache[name] = (version, now, crl)
    return crl


def trust_settings(session: Session, ctx: SealContext, now: dt.datetime) -> TrustSettings:
    crls = [current_crl(session, ctx, pki_lib.ISSUING_CRL_NAME, now)]
    if ctx.pki.root_ca is not None:
        crls.append(current_crl(session, ctx, pki_lib.ROOT_CRL_NAME, now))
    # The same CRL objects come back from the cache until revocations change, so the
    # settings (and their parsed certificates and CRLs) are reused across documents.
    key = (id(ctx.pki), *(id(crl) for crl in crls))
    cached = ctx.trust_cache.get("current")
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    trust = TrustSettings(
        roots=[ctx.pki.root], intermediates=[ctx.pki.issuing.certificate], crls=crls
    )
    ctx.trust_cache["current"] = (key, trust)  # holds the CRLs, so their ids stay unique
    return trust


# ---------------------------------------------------------------- documents


SIGNER_CACHE_SIZE = 256


def _seal_signer(ctx: SealContext, seal: Seal) -> ProviderSigner:
    """The seal's signer, built once per key and certificate (parsing the certificate and
    chain, and sizing the signature, are not redone per document)."""
    key = KeyRef(seal.key.provider, seal.key.ref, seal.key.algorithm, seal.key.wrapped or b"")
    pem = seal.certificate.pem
    cache_key = (id(ctx.pki), key, pem)
    signer = ctx.signer_cache.get(cache_key)
    if signer is None:
        cert = x509.load_pem_x509_certificate(pem.encode())
        signer = ProviderSigner(ctx.provider(key.provider), key, cert, ctx.pki.chain)
        if len(ctx.signer_cache) >= SIGNER_CACHE_SIZE:
            ctx.signer_cache.clear()
        ctx.signer_cache[cache_key] = signer
    return signer  # type: ignore[no-any-return]


_IMAGE_CACHE: dict[str, PreparedImage] = {}


def _seal_image(seal: Seal) -> PreparedImage:
    """The seal's image encoded for PDF once, not per document."""
    digest = hashlib.sha256(seal.image_png).hexdigest()
    prepared = _IMAGE_CACHE.get(digest)
    if prepared is None:
        image = Image.open(io.BytesIO(seal.image_png))
        image.load()
        prepared = PreparedImage.from_image(image)
        _IMAGE_CACHE[digest] = prepared
    return prepared


def _handwriting(png: bytes) -> Image.Image:
    if not png or len(png) > MAX_HANDWRITING_BYTES or not png.startswith(b"\x89PNG"):
        raise errors.HandwritingInvalid()
    try:
        return handwriting_to_rgba(png)  # type: ignore[no-any-return]
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise errors.HandwritingInvalid() from None


def _sign_as_person(
    session: Session,
    ctx: SealContext,
    cipher: FieldCipher,
    pdf: bytes,
    personal: PersonalSignature,
    *,
    signer_box: Any,
    seal_box: Any,
    trust: TrustSettings,
    now: dt.datetime,
) -> bytes:
    """The applicant's certification signature (further signatures allowed), made with a key
    that lives for this one event and a short-lived certificate naming their verified identity.
    The seal's field is created now, locked so the seal's signature closes the document."""
    name = real_name_of(cipher, personal.user)
    id_number = id_number_of(cipher, personal.user)
    if not name or not id_number:
        raise errors.SignerNotVerified()
    event_provider = SoftwareKeyProvider({"event": secrets.token_bytes(32)})
    key = event_provider.generate(f"event-{secrets.token_hex(8)}", ECDSA_P256)
    cert = pki_lib.issue_event_certificate(
        ctx.pki,
        ctx.software,
        event_provider.public_key(key),
        real_name=name,
        masked_id_number=mask_id_number(id_number),
        now=now,
    )
    _store_certificate(session, cert, kind="event", key_id=None)
    signer = ProviderSigner(event_provider, key, cert, ctx.pki.chain)
    seal_field = SigFieldSpec(
        SEAL_FIELD,
        on_page=0,
        box=seal_box.as_tuple(),
        field_mdp_spec=_lock_all(),
        doc_mdp_update_value=MDPPerm.NO_CHANGES,
    )
    return sign_pdf(
        pdf,
        signer,
        field_name=SIGNER_FIELD,
        appearance=Appearance(signer_box, _handwriting(personal.handwriting_png)),
        trust=trust,
        certify=True,
        permissions=MDPPerm.FILL_FORMS,
        extra_fields=[seal_field],
        reason="本人签署",
        timestamper=ctx.timestamper(),
    )


def _lock_all() -> Any:
    from pyhanko.sign.fields import FieldMDPAction, FieldMDPSpec

    return FieldMDPSpec(FieldMDPAction.ALL)


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
        scoped_key = f"{actor.kind}:{actor.id if actor.id is not None else '-'}:{idempotency_key}"
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
    spec_template = get_template(template)
    check_use(session, seal, actor=actor, matter=matter, now=now)
    if spec_template.personal_signature and (personal is None or cipher is None):
        raise errors.SignerNotVerified("该文书需要申请人本人签名")
    public_id = _unique_public_id(session, ctx)
    code = ctx.codes.code_for(public_id)
    fields, paragraphs, table = render_values(spec_template, data)
    issued_on = now.astimezone(CHINA_TZ).date()
    department = session.get(Department, seal.department_id)
    spec = DocumentSpec(
        title=spec_template.title,
        number=f"{spec_template.number_prefix}〔{issued_on.year}〕{public_id}号",
        issuer=department.name if department else seal.name,
        issued_on=issued_on,
        fields=[
            (spec_template.holder_label, holder.name),
            (spec_template.id_label, holder.printed_id),
            *fields,
        ],
        paragraphs=paragraphs,
        table=table,
        verify_url=ctx.verify_url(code),
        verify_code=code,
        signer_box=spec_template.personal_signature,
    )
    rendered = render_document(spec, ctx.fonts)
    trust = trust_settings(session, ctx, now)
    pdf = rendered.pdf
    if personal is not None and cipher is not None and rendered.signer_box is not None:
        pdf = _sign_as_person(
            session,
            ctx,
            cipher,
            pdf,
            personal,
            signer_box=rendered.signer_box,
            seal_box=rendered.seal_box,
            trust=trust,
            now=now,
        )
        appearance = Appearance(rendered.seal_box, _seal_image(seal))
        signed = sign_pdf(
            pdf,
            _seal_signer(ctx, seal),
            field_name=SEAL_FIELD,
            appearance=appearance,
            trust=trust,
            certify=False,
            existing_field=True,
            reason="用印",
            timestamper=ctx.timestamper(),
        )
    else:
        signed = sign_pdf(
            pdf,
            _seal_signer(ctx, seal),
            field_name=SEAL_FIELD,
            appearance=Appearance(rendered.seal_box, _seal_image(seal)),
            trust=trust,
            certify=True,
            permissions=MDPPerm.NO_CHANGES,
            reason="用印",
            location="广州市番禺区",
            timestamper=ctx.timestamper(),
        )
    digest = hashlib.sha256(signed).hexdigest()
    storage_key = f"{public_id}.pdf"
    ctx.storage_dir.mkdir(parents=True, exist_ok=True)
    (ctx.storage_dir / storage_key).write_bytes(signed)
    document = IssuedDocument(
        public_id=public_id,
        template=template,
        title=spec_template.title,
        number=spec.number,
        seal_id=seal.id,
        holder_masked=holder.masked,
        holder_user_id=holder.user_id,
        matter=matter,
        sha256=digest,
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
    try:
        with session.begin_nested():
            session.add(document)
            session.flush()
    except IntegrityError:
        taken = scoped_key is not None and session.scalar(
            select(IssuedDocument.id).where(IssuedDocument.idempotency_key == scoped_key)
        )
        if not taken:
            raise
        # A concurrent retry with the same key registered its document first: ours goes.
        (ctx.storage_dir / storage_key).unlink(missing_ok=True)
        earlier = _issued_with_key(session, scoped_key, fingerprint)  # type: ignore[arg-type]
        assert earlier is not None
        return earlier
    if supersedes is not None:
        _set_document_status(
            session,
            supersedes,
            DocumentStatus.SUPERSEDED,
            now=now,
            reason=f"由{public_id}替代",
            superseded_by=document.id,
        )
    session.add(
        SealUse(
            seal_id=seal.id,
            document_id=document.id,
            actor_kind=actor.kind,
            actor_id=actor.id,
            document_sha256=digest,
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
        subject_id=public_id,
        details={
            "seal": seal.code,
            "template": template,
            "sha256": digest,
            "matter": matter,
            "personal_signature": personal is not None,
        },
        request_id=request_id,
    )
    session.flush()
    return document


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
    earlier = session.scalars(
        select(IssuedDocument).where(IssuedDocument.idempotency_key == scoped_key)
    ).first()
    if earlier is not None and earlier.request_fingerprint != fingerprint:
        raise errors.IdempotencyKeyReused()
    return earlier


def _unique_public_id(session: Session, ctx: SealContext) -> str:
    from seals.codes import new_document_id

    while True:
        public_id = new_document_id()
        if (
            session.scalar(select(IssuedDocument.id).where(IssuedDocument.public_id == public_id))
            is None
        ):
            return public_id


def _set_document_status(
    session: Session,
    document: IssuedDocument,
    status: DocumentStatus,
    *,
    now: dt.datetime,
    reason: str,
    superseded_by: int | None = None,
) -> None:
    result = session.execute(
        update(IssuedDocument)
        .where(IssuedDocument.id == document.id, IssuedDocument.status == DocumentStatus.VALID)
        .values(
            status=status,
            status_changed_at=now,
            status_reason=reason[:255],
            superseded_by_id=superseded_by,
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise errors.DocumentStatusConflict(status=document.status.value)
    session.refresh(document)


def revoke_document(
    session: Session, document: IssuedDocument, *, actor: Actor, now: dt.datetime, reason: str
) -> IssuedDocument:
    """Mark a document revoked in the registry (verification then reports it)."""
    _set_document_status(session, document, DocumentStatus.REVOKED, now=now, reason=reason)
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
    return (ctx.storage_dir / document.storage_key).read_bytes()


# ---------------------------------------------------------------- verification


def find_by_code(session: Session, ctx: SealContext, code: str) -> IssuedDocument:
    """The document a verification code names; a forged tag is refused before any query."""
    public_id = ctx.codes.document_id(code)
    if public_id is None:
        raise errors.DocumentNotFound()
    document = session.scalar(select(IssuedDocument).where(IssuedDocument.public_id == public_id))
    if document is None:
        raise errors.DocumentNotFound()
    return document


def effective_status(document: IssuedDocument) -> str:
    """The document's status, counting its seal's revocation."""
    if document.status != DocumentStatus.VALID:
        return document.status.value
    if document.seal.status == SealStatus.REVOKED:
        return "revoked"
    return "valid"


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
        "status": effective_status(document),
        "status_changed_at": document.status_changed_at,
        "personal_signature": document.personal_signature,
        "verify_url": ctx.verify_url(ctx.codes.code_for(document.public_id)),
    }


def verify_upload(
    session: Session, ctx: SealContext, data: bytes, *, now: dt.datetime
) -> dict[str, Any]:
    """Validate an uploaded PDF's signatures and look it up in the registry."""
    try:
        report = verify_pdf(data, trust_settings(session, ctx, now), max_bytes=ctx.max_upload_bytes)
    except VerificationInputError as exc:
        raise {
            "too_large": errors.UploadTooLarge(limit_bytes=ctx.max_upload_bytes),
            "no_signatures": errors.UploadUnsigned(),
        }.get(exc.code, errors.UploadNotPdf()) from None
    document = session.scalar(select(IssuedDocument).where(IssuedDocument.sha256 == report.sha256))
    registry: dict[str, Any] = {"found": document is not None, "matches": document is not None}
    if document is not None:
        registry.update(
            document_id=document.public_id,
            status=effective_status(document),
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

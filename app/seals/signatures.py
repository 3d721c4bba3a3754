"""The signatures on an issued document: the applicant's own first when the template asks
for it, then the seal's, which closes the document.

Alone, the seal certifies the document (no changes allowed). After an applicant, the
applicant's signature certifies it (allowing further signatures) and creates the seal's field
locked in advance; the seal then signs that field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from dataclasses import dataclass

from cryptography import x509
from PIL import Image, UnidentifiedImageError
from pyhanko.sign.fields import MDPPerm
from sqlalchemy.orm import Session

from app.identity.models import User
from app.identity.realname import id_number_of, real_name_of
from app.seals import errors
from app.seals.context import SealContext
from app.seals.models import Seal
from app.seals.trust import store_certificate
from app.security.crypto import FieldCipher
from app.security.masking import mask_id_number
from seals import pki as pki_lib
from seals.documents import Box, RenderedDocument, handwriting_to_rgba
from seals.keys import ECDSA_P256, KeyRef, SoftwareKeyProvider
from seals.signing import (
    Appearance,
    PreparedImage,
    ProviderSigner,
    TrustSettings,
    locking_field,
    sign_pdf,
)

SEAL_FIELD = "DepartmentSeal"
SIGNER_FIELD = "ApplicantSignature"
MAX_HANDWRITING_BYTES = 512 * 1024
SIGNER_CACHE_SIZE = 256


@dataclass(frozen=True)
class PersonalSignature:
    """The applicant's own signature: their handwriting and their verified identity."""

    user: User
    handwriting_png: bytes


def sign_document(
    session: Session,
    ctx: SealContext,
    rendered: RenderedDocument,
    seal: Seal,
    *,
    personal: PersonalSignature | None,
    cipher: FieldCipher | None,
    trust: TrustSettings,
    now: dt.datetime,
) -> bytes:
    """The rendered document signed: by the applicant if there is one and room for them, then
    with the seal."""
    pdf = rendered.pdf
    after_applicant = False
    if personal is not None and cipher is not None and rendered.signer_box is not None:
        pdf = _sign_as_applicant(
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
        after_applicant = True
    return sign_pdf(
        pdf,
        seal_signer(ctx, seal),
        field_name=SEAL_FIELD,
        appearance=Appearance(rendered.seal_box, seal_image(ctx, seal)),
        trust=trust,
        # After an applicant the document is already certified and the seal's field exists,
        # locked so that this signature closes the document.
        certify=not after_applicant,
        permissions=MDPPerm.NO_CHANGES,
        existing_field=after_applicant,
        reason="用印",
        location=None if after_applicant else "广州市番禺区",
        timestamper=ctx.timestamper(),
    )


def _sign_as_applicant(
    session: Session,
    ctx: SealContext,
    cipher: FieldCipher,
    pdf: bytes,
    personal: PersonalSignature,
    *,
    signer_box: Box,
    seal_box: Box,
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
    store_certificate(session, cert, kind="event", key_id=None)
    signer = ProviderSigner(event_provider, key, cert, ctx.pki.chain)
    return sign_pdf(
        pdf,
        signer,
        field_name=SIGNER_FIELD,
        appearance=Appearance(signer_box, _handwriting(personal.handwriting_png)),
        trust=trust,
        certify=True,
        permissions=MDPPerm.FILL_FORMS,
        extra_fields=[locking_field(SEAL_FIELD, seal_box)],
        reason="本人签署",
        timestamper=ctx.timestamper(),
    )


def _handwriting(png: bytes) -> Image.Image:
    if not png or len(png) > MAX_HANDWRITING_BYTES or not png.startswith(b"\x89PNG"):
        raise errors.HandwritingInvalid()
    try:
        return handwriting_to_rgba(png)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise errors.HandwritingInvalid() from None


def seal_signer(ctx: SealContext, seal: Seal) -> ProviderSigner:
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
    return signer


def seal_image(ctx: SealContext, seal: Seal) -> PreparedImage:
    """The seal's image encoded for PDF once, not per document."""
    digest = hashlib.sha256(seal.image_png).hexdigest()
    prepared = ctx.image_cache.get(digest)
    if prepared is None:
        image = Image.open(io.BytesIO(seal.image_png))
        image.load()
        prepared = PreparedImage.from_image(image)
        ctx.image_cache[digest] = prepared
    return prepared

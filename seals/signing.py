"""PAdES signatures with pyHanko, the key staying in its provider.

Seals sign as a certification signature (DocMDP: no changes allowed) with the seal image as the
visible appearance. A letter first carries the applicant's signature as the certification
signature allowing only further signatures, then the department's seal as an approval
signature that locks the document. Revocation data of the chain is embedded (PAdES B-LT), and
with a timestamp authority the signature is timestamped and a document timestamp added
(B-T / B-LTA).
"""

from __future__ import annotations

import copy
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from asn1crypto import algos, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.sign import attributes, fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from seals.documents import Box
from seals.keys import ECDSA_P256, KeyProvider, KeyRef

ECDSA_SIGNATURE_PLACEHOLDER = 72  # the longest DER ECDSA P-256 signature
# Room in the CMS beyond its certificates: signed attributes, signer info, algorithm ids and
# the signature itself come to well under 2 KB even with an RSA-4096 key.
CMS_OVERHEAD_BYTES = 4096


def to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def to_asn1_crl(crl: x509.CertificateRevocationList) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))


class EncodedSigningCertificateV2(attributes.CMSAttributeProvider):
    """The signing-certificate-v2 attribute (RFC 5035) of one certificate, encoded once.

    Each signature gets the value parsed back from the bytes: an asn1crypto value read from DER
    dumps its bytes as they are, where one built in memory is re-encoded on every dump.
    """

    attribute_type = "signing_certificate_v2"

    def __init__(self, signing_cert: asn1_x509.Certificate) -> None:
        self.signing_cert = signing_cert
        self._encoded = as_signing_certificate_v2(signing_cert).dump()

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(self._encoded)


class ProviderSigner(Signer):
    """A pyHanko signer whose raw signatures come from a key provider."""

    def __init__(
        self,
        provider: KeyProvider,
        key: KeyRef,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
    ) -> None:
        mechanism = "sha256_ecdsa" if key.algorithm == ECDSA_P256 else "sha256_rsa"
        super().__init__(
            signing_cert=to_asn1_cert(certificate),
            cert_registry=SimpleCertificateStore.from_certs([to_asn1_cert(c) for c in chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
            embed_roots=True,
        )
        self._provider = provider
        self._key = key
        self._placeholder_only = False
        # The signature's placeholder size, known from the certificates it embeds, so pyHanko
        # need not build a throwaway CMS to estimate it on every signature. Hex-encoded: x2.
        embedded = [self.signing_cert, *self.cert_registry]
        self.bytes_reserved = 2 * (sum(len(c.dump()) for c in embedded) + CMS_OVERHEAD_BYTES)
        self._signing_certificate_v2 = EncodedSigningCertificateV2(self.signing_cert)

    def placeholder(self) -> ProviderSigner:
        """This signer building the same signature around a placeholder value: every step of
        signing but the key's, for warming a process (a seal's key signs only what is recorded
        as the seal's use). What it signs does not verify."""
        twin = copy.copy(self)
        twin._placeholder_only = True
        return twin

    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        # pyHanko builds the signing-certificate-v2 attribute afresh for every signature, and
        # asn1crypto re-encodes a value built in memory, its whole subtree, on each of the
        # several dumps a signature makes: ~6 ms of a ~10 ms signature for a value that only
        # depends on this signer's certificate. It is encoded once per signer instead.
        for provider in super()._signed_attr_providers(*args, **kwargs):
            if (
                isinstance(provider, attributes.SigningCertificateV2Provider)
                and provider.signing_cert is self.signing_cert
            ):
                yield self._signing_certificate_v2
            else:
                yield provider

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run or self._placeholder_only:
            return bytes(ECDSA_SIGNATURE_PLACEHOLDER if self._key.algorithm == ECDSA_P256 else 256)
        return self._provider.sign(self._key, data, digest_algorithm)


@dataclass(frozen=True)
class TrustSettings:
    """What validation trusts and knows: roots, intermediates and current CRLs."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    crls: list[x509.CertificateRevocationList]

    @cached_property
    def asn1_roots(self) -> list[asn1_x509.Certificate]:
        return [to_asn1_cert(c) for c in self.roots]

    @cached_property
    def asn1_intermediates(self) -> list[asn1_x509.Certificate]:
        return [to_asn1_cert(c) for c in self.intermediates]

    @cached_property
    def asn1_crls(self) -> list[asn1_crl.CertificateList]:
        return [to_asn1_crl(c) for c in self.crls]

    def context(self, *, moment: Any = None, for_embedding: bool = False) -> ValidationContext:
        """A pyHanko validation context that never fetches over the network."""
        kwargs: dict[str, Any] = {}
        if moment is not None:
            kwargs["moment"] = moment
        return ValidationContext(
            trust_roots=self.asn1_roots,
            other_certs=self.asn1_intermediates,
            crls=self.asn1_crls,
            allow_fetching=False,
            # Embedding wants every certificate's revocation data present; checking tolerates
            # a CRL that is not at hand (the registry check covers revoked seals).
            revocation_mode="hard-fail" if for_embedding else "soft-fail",
            **kwargs,
        )


def timestamper_for(url: str | None) -> TimeStamper | None:
    return HTTPTimeStamper(url) if url else None


@dataclass(frozen=True)
class PreparedImage:
    """An image encoded once as PDF image data, to stamp on many documents.

    A seal's image is the same on every document it signs; encoding and compressing its
    samples per signature cost more than the rest of the appearance.
    """

    width: int
    height: int
    colour: bytes  # Flate-compressed 8-bit RGB samples
    alpha: bytes  # Flate-compressed 8-bit alpha samples (the image's soft mask)

    @classmethod
    def from_image(cls, image: Any) -> PreparedImage:
        rgba = image.convert("RGBA")
        return cls(
            width=rgba.width,
            height=rgba.height,
            colour=zlib.compress(rgba.convert("RGB").tobytes()),
            alpha=zlib.compress(rgba.getchannel("A").tobytes()),
        )

    def write(self, writer: Any) -> generic.IndirectObject:
        """Add the image XObject (and its soft mask) to `writer`."""

        def image_stream(
            data: bytes, colour_space: str, extra: dict[generic.NameObject, Any] | None = None
        ) -> generic.StreamObject:
            entries = {
                generic.pdf_name("/Type"): generic.pdf_name("/XObject"),
                generic.pdf_name("/Subtype"): generic.pdf_name("/Image"),
                generic.pdf_name("/Width"): generic.NumberObject(self.width),
                generic.pdf_name("/Height"): generic.NumberObject(self.height),
                generic.pdf_name("/ColorSpace"): generic.pdf_name(colour_space),
                generic.pdf_name("/BitsPerComponent"): generic.NumberObject(8),
                generic.pdf_name("/Filter"): generic.pdf_name("/FlateDecode"),
                **(extra or {}),
            }
            return generic.StreamObject(generic.DictionaryObject(entries), encoded_data=data)

        smask = writer.add_object(image_stream(self.alpha, "/DeviceGray"))
        return writer.add_object(
            image_stream(self.colour, "/DeviceRGB", {generic.pdf_name("/SMask"): smask})
        )


class _PreparedPdfImage(PdfImage):
    """pyHanko's image content, drawing a `PreparedImage` instead of encoding a PIL image."""

    def __init__(self, prepared: PreparedImage, writer: Any) -> None:
        super().__init__(
            # pyHanko's PdfImage encodes a PIL image; this subclass hands it the already
            # encoded XObject (`image_ref`), so there is no PIL image to give.
            None,  # type: ignore[arg-type]
            writer=writer,
            box=BoxConstraints(prepared.width, prepared.height),
        )
        self.prepared = prepared

    @property
    def image_ref(self) -> generic.IndirectObject:
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:
            self._image_ref = ref = self.prepared.write(self.writer)
        return ref


@dataclass(frozen=True)
class Appearance:
    """Where the signature shows and what it shows: an RGBA image in a box on page 1."""

    box: Box
    image: Any  # PreparedImage, or a PIL.Image.Image encoded for this one signature


def locking_field(field_name: str, box: Box) -> SigFieldSpec:
    """A signature field on page 1 whose signature locks the whole document (no changes)."""
    return SigFieldSpec(
        field_name,
        on_page=0,
        box=box.as_tuple(),
        field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
        doc_mdp_update_value=MDPPerm.NO_CHANGES,
    )


def sign_pdf(
    pdf_bytes: bytes,
    signer: Signer,
    *,
    field_name: str,
    appearance: Appearance | None,
    trust: TrustSettings,
    certify: bool,
    permissions: MDPPerm = MDPPerm.NO_CHANGES,
    lock_document: bool = False,
    reason: str | None = None,
    location: str | None = None,
    name: str | None = None,
    timestamper: TimeStamper | None = None,
    extra_fields: list[SigFieldSpec] | None = None,
    existing_field: bool = False,
) -> bytes:
    """Sign `pdf_bytes` in an incremental update; returns the signed file.

    `extra_fields` are empty signature fields created in the same revision (the seal's field,
    locked in advance, when an applicant signs first); `existing_field` signs such a field.
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes), strict=False)
    if timestamper is None:
        # B-LT without a timestamp authority: the chain's certificates and CRLs go into the
        # DSS in the same revision as the signature, so the signature covers them and the
        # whole file ("Total document signed"), and the document validates offline later.
        DocumentSecurityStore.supply_dss_in_writer(
            writer,
            None,
            certs=[
                *trust.asn1_intermediates,
                *trust.asn1_roots,
                *signer.cert_registry,
                signer.signing_cert,
            ],
            crls=list(trust.asn1_crls),
        )
    for spec in extra_fields or []:
        fields.append_signature_field(writer, spec)
    field_spec = None
    stamp_style = None
    if appearance is not None and not existing_field:
        field_spec = (
            locking_field(field_name, appearance.box)
            if lock_document
            else SigFieldSpec(field_name, on_page=0, box=appearance.box.as_tuple())
        )
    if appearance is not None:
        image = appearance.image
        if not isinstance(image, PreparedImage):
            image = PreparedImage.from_image(image)
        stamp_style = StaticStampStyle(background=_PreparedPdfImage(image, writer), border_width=0)
    metadata = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=certify,
        docmdp_permissions=permissions,
        reason=reason,
        location=location,
        name=name,
        # With a timestamp authority pyHanko adds the DSS and a document timestamp after the
        # signature (B-LTA); otherwise the DSS was written above.
        embed_validation_info=timestamper is not None,
        validation_context=trust.context(for_embedding=True) if timestamper is not None else None,
        use_pades_lta=timestamper is not None,
    )
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=signer,
        stamp_style=stamp_style,
        new_field_spec=field_spec,
        timestamper=timestamper,
    )
    # Without a timestamp authority the signature's size is known in advance; a timestamp
    # token's is not, so then pyHanko estimates it.
    reserved = getattr(signer, "bytes_reserved", None) if timestamper is None else None
    output = pdf_signer.sign_pdf(writer, in_place=False, bytes_reserved=reserved)
    return output.getvalue()

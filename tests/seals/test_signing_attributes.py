"""The signed attributes of a seal's signature, and what is built once per signer."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from unittest import mock

import pyhanko.sign.attributes
from asn1crypto import tsp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import as_signing_certificate_v2

from seals import pki as pki_lib
from seals.documents import DocumentSpec, render_document
from seals.signing import ProviderSigner, TrustSettings, sign_pdf, to_asn1_cert
from seals.verify import verify_pdf


def _signer_and_trust(seal_context):  # type: ignore[no-untyped-def]
    provider = seal_context.software
    key = provider.generate("seal-attributes")
    now = dt.datetime.now(dt.UTC)
    pki = seal_context.pki
    cert = pki_lib.issue_seal_certificate(
        pki,
        provider,
        provider.public_key(key),
        seal_name="番禺区测试局审批专用章",
        organisation="番禺区测试局",
        seal_kind_label="审批专用章",
        seal_code="4401130000011",
        not_before=now,
        not_after=now + dt.timedelta(days=1),
    )
    crls = [
        pki_lib.build_crl(pki.issuing, provider, [], now=now),
        pki_lib.build_crl(pki.root_ca, provider, [], now=now),
    ]
    trust = TrustSettings([pki.root], [pki.issuing.certificate], crls)
    return ProviderSigner(provider, key, cert, pki.chain), cert, trust


def _sign(signer, trust, seal_context, holder: str) -> bytes:  # type: ignore[no-untyped-def]
    rendered = render_document(
        DocumentSpec(
            "测试证明", holder, "番禺区测试局", dt.date(2026, 12, 4), [("持证人", holder)]
        ),
        seal_context.fonts,
    )
    return sign_pdf(
        rendered.pdf, signer, field_name="Seal", appearance=None, trust=trust, certify=True
    )


def test_each_signature_names_its_certificate_in_signing_certificate_v2(seal_context) -> None:  # type: ignore[no-untyped-def]
    signer, cert, trust = _signer_and_trust(seal_context)
    for holder in ("甲公司", "乙公司"):
        signed = _sign(signer, trust, seal_context, holder)
        assert verify_pdf(signed, trust).status == "valid"
        signature = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
        values = [
            attribute["values"][0]
            for attribute in signature.signer_info["signed_attrs"]
            if attribute["type"].native == "signing_certificate_v2"
        ]
        assert len(values) == 1
        value = values[0]
        assert isinstance(value, tsp.SigningCertificateV2)
        # The same DER pyHanko itself would write, and it names this seal's certificate.
        assert value.dump() == as_signing_certificate_v2(to_asn1_cert(cert)).dump()
        der = to_asn1_cert(cert).dump()
        assert value["certs"][0]["cert_hash"].native == hashlib.sha256(der).digest()


def test_the_attribute_is_encoded_once_per_signer_not_per_signature(seal_context) -> None:  # type: ignore[no-untyped-def]
    signer, _cert, trust = _signer_and_trust(seal_context)
    with mock.patch.object(
        pyhanko.sign.attributes,
        "as_signing_certificate_v2",
        wraps=pyhanko.sign.attributes.as_signing_certificate_v2,
    ) as built:
        _sign(signer, trust, seal_context, "丙公司")
        _sign(signer, trust, seal_context, "丁公司")
        assert built.call_count == 0
        # The count does see pyHanko's own provider: a signer without the encoded attribute
        # (as after a pyHanko upgrade that renamed the hook) builds it on every signature.
        with mock.patch.object(
            ProviderSigner,
            "_signed_attr_providers",
            ProviderSigner.__mro__[1]._signed_attr_providers,
        ):
            _sign(signer, trust, seal_context, "戊公司")
        assert built.call_count == 1

"""With a timestamp authority configured, issued documents are PAdES B-T / B-LTA.

A real RFC 3161 authority is served over HTTP on loopback (pyHanko's test-grade timestamper
behind a tiny WSGI app), its certificate issued by the test PKI's issuing CA with the
timeStamping purpose, so our own trust roots cover it.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.status import SignatureCoverageLevel
from werkzeug.wrappers import Request, Response

from app.db import utcnow
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor
from app.seals.signatures import PersonalSignature
from app.seals.trust import trust_settings
from app.seals.verification import verify_upload
from seals import pki as pki_lib
from seals.signing import to_asn1_cert
from tests.factories.seals import stored_pdf
from tests.support.http import served


def _tsa_certificate(ctx: SealContext) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A timestamping certificate from the test PKI's issuing CA (critical timeStamping EKU)."""
    ca_key = ctx.software.open(ctx.pki.issuing.key)
    # pyHanko's test timestamper signs with RSA only.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "测试时间戳服务")]))
        .issuer_name(ctx.pki.issuing.certificate.subject)
        .public_key(key.public_key())
        .serial_number(pki_lib.new_serial())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[
                            x509.UniformResourceIdentifier(
                                ctx.pki.crl_url(pki_lib.ISSUING_CRL_NAME)
                            )
                        ],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert, key


class _Authority:
    """The TSA's WSGI app; counts the requests it answered."""

    def __init__(self, stamper: DummyTimeStamper) -> None:
        self.stamper = stamper
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method != "POST" or request.mimetype != "application/timestamp-query":
            return Response(status=400)(environ, start_response)
        query = tsp.TimeStampReq.load(request.get_data())
        reply = self.stamper.request_tsa_response(query)
        self.requests += 1
        return Response(reply.dump(), mimetype="application/timestamp-reply")(
            environ, start_response
        )


@pytest.fixture(scope="module")
def tsa(seal_context: SealContext) -> Iterator[tuple[str, _Authority]]:
    """An RFC 3161 timestamp authority on loopback: (its URL, the app)."""
    cert, key = _tsa_certificate(seal_context)
    key_info = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    authority = _Authority(
        DummyTimeStamper(
            tsa_cert=to_asn1_cert(cert),
            tsa_key=key_info,
            certs_to_embed=[to_asn1_cert(c) for c in seal_context.pki.chain],  # type: ignore[arg-type]
        )
    )
    with served(authority) as base_url:
        yield f"{base_url}/tsa", authority


@pytest.fixture
def with_tsa(tsa, seal_context, monkeypatch) -> _Authority:  # type: ignore[no-untyped-def]
    """SEAL_TSA_URL set to the loopback authority for this test."""
    url, authority = tsa
    monkeypatch.setattr(seal_context, "tsa_url", url)
    return authority  # type: ignore[no-any-return]


def test_the_setting_reaches_the_signer(app, tsa) -> None:  # type: ignore[no-untyped-def]
    url, _authority = tsa
    ctx = SealContext.from_config({**app.config, "SEAL_TSA_URL": url})
    stamper = ctx.timestamper()
    assert isinstance(stamper, HTTPTimeStamper) and stamper.url == url
    assert SealContext.from_config({**app.config, "SEAL_TSA_URL": ""}).timestamper() is None


def _pyhanko_checks(pdf: bytes, trust: Any, seal_name: str) -> None:
    """pyHanko: the last signature is valid, trusted and timestamped; a document timestamp
    follows it (B-LTA) and is valid too."""
    reader = PdfFileReader(io.BytesIO(pdf))
    embedded = reader.embedded_regular_signatures
    timestamps = reader.embedded_timestamp_signatures
    assert embedded and len(timestamps) == 1
    seal_sig = embedded[-1]
    status = validate_pdf_signature(seal_sig, trust.context())
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.signing_cert.subject.native["common_name"] == seal_name
    token = status.timestamp_validity
    assert token is not None, "the signature carries no signature timestamp (B-T)"
    assert token.intact and token.valid and token.trusted
    assert token.signing_cert.subject.native["common_name"] == "测试时间戳服务"
    assert abs(token.timestamp - utcnow()) < dt.timedelta(minutes=5)
    # A document timestamp follows the signature and its DSS (B-LTA).
    (doc_ts,) = timestamps
    assert doc_ts.signed_revision > seal_sig.signed_revision
    ts_status = validate_pdf_timestamp(doc_ts, validation_context=trust.context())
    assert ts_status.intact and ts_status.valid and ts_status.trusted
    # Only validation data (the timestamp's own DSS entries) may follow it.
    assert ts_status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        ts_status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and ts_status.modification_level == ModificationLevel.LTA_UPDATES
    )
    # Validation data (DSS) sits in the file for long-term validation.
    assert reader.root.get("/DSS") is not None


def test_a_certificate_is_b_lta_and_verifies(  # type: ignore[no-untyped-def]
    with_tsa, create_seal_for, issue_certificate, session, seal_context, client
) -> None:
    seal = create_seal_for()
    document = issue_certificate(seal)
    # The signature timestamp and the document timestamp (pyHanko may ask once more to size
    # the token's placeholder).
    assert with_tsa.requests >= 2
    pdf = stored_pdf(seal_context, document)
    trust = trust_settings(session, seal_context, utcnow())
    _pyhanko_checks(pdf, trust, seal.name)

    uploaded = client.post("/api/v1/seals/verify", data=pdf, content_type="application/pdf")
    assert uploaded.status_code == 200, uploaded.get_json()
    result = uploaded.get_json()
    assert result["status"] == "valid", result["signatures"]
    assert result["registry"]["found"] and result["registry"]["matches"]
    assert result["registry"]["status"] == "valid"
    signatures = result["signatures"]
    seal_report, doc_timestamp = signatures
    assert seal_report["signer"] == seal.name
    assert seal_report["time_source"] == "timestamp" and seal_report["status"] == "valid"
    assert seal_report["covers_whole_document"] and seal_report["certification"]
    # The document timestamp is reported as itself (the TSA), valid and trusted.
    assert doc_timestamp["signer"] == "测试时间戳服务" and doc_timestamp["status"] == "valid"
    assert doc_timestamp["trusted"] and doc_timestamp["certification"] is False


def test_content_appended_after_the_document_timestamp_is_modified(  # type: ignore[no-untyped-def]
    with_tsa, create_seal_for, issue_certificate, session, seal_context
) -> None:
    document = issue_certificate(create_seal_for())
    writer = IncrementalPdfFileWriter(io.BytesIO(stored_pdf(seal_context, document)))
    writer.root["/Lang"] = generic.TextStringObject("en")  # not validation data
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    result = verify_upload(session, seal_context, out.getvalue(), now=utcnow())
    assert result["status"] == "modified", result["signatures"]
    assert result["signatures"][0]["covers_whole_document"] is False


def test_a_letter_signed_then_sealed_is_b_lta_and_verifies(  # type: ignore[no-untyped-def]
    with_tsa,
    create_seal_for,
    create_verified_user,
    session,
    seal_context,
    field_cipher,
    signature_png,
    client,
) -> None:
    user = create_verified_user()
    seal = create_seal_for(templates=["commitment_letter"], matters=["commitment_letter"])
    document = issue_document(
        session,
        seal_context,
        seal=seal,
        template="commitment_letter",
        holder=Holder(name="张三", id_number="440113199001011239", kind="person", user_id=user.id),
        data={"matter_name": "临时户外广告设置审批"},
        actor=SealActor("system"),
        now=utcnow(),
        matter="commitment_letter",
        personal=PersonalSignature(user, signature_png),
        cipher=field_cipher,
    )
    pdf = stored_pdf(seal_context, document)
    trust = trust_settings(session, seal_context, utcnow())
    reader = PdfFileReader(io.BytesIO(pdf))
    applicant_sig = reader.embedded_regular_signatures[0]
    applicant = validate_pdf_signature(applicant_sig, trust.context())
    assert applicant.intact and applicant.valid and applicant.trusted
    assert applicant.timestamp_validity is not None and applicant.timestamp_validity.valid

    uploaded = client.post("/api/v1/seals/verify", data=pdf, content_type="application/pdf")
    result = uploaded.get_json()
    assert result["status"] == "valid", result["signatures"]
    assert result["registry"]["matches"]
    regular = [s for s in result["signatures"] if s["signer"] != "测试时间戳服务"]
    assert [s["time_source"] for s in regular] == ["timestamp", "timestamp"]


@pytest.mark.skipif(
    not (shutil.which("pdfsig") and shutil.which("certutil")),
    reason="needs pdfsig and certutil (apt-get install poppler-utils libnss3-tools)",
)
def test_pdfsig_finds_the_timestamped_seal_valid_and_trusted(  # type: ignore[no-untyped-def]
    with_tsa, create_seal_for, issue_certificate, seal_context, tmp_path
) -> None:
    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True
    )
    root = tmp_path / "root.pem"
    root.write_bytes(seal_context.pki.root.public_bytes(serialization.Encoding.PEM))
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "root", "-t", "CT,C,C", "-i", str(root)],
        check=True,
        capture_output=True,
    )
    path = tmp_path / "doc.pdf"
    path.write_bytes(stored_pdf(seal_context, issue_certificate(create_seal_for())))
    # pdfsig exits 0 whatever it finds; what it prints is the verdict.
    done = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{db}", str(path)], capture_output=True, text=True, check=False
    )
    output = done.stdout + done.stderr
    seal_part = output.split("Signature #2")[0]
    assert "Signature is Valid." in seal_part and "Certificate is Trusted." in seal_part, output

"""Issued documents: signed, verifiable by pyHanko and poppler, tamper-evident."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.db import utcnow
from app.seals import errors
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, change_seal_status
from app.seals.models import DocumentStatus, SealStatus, SealUse
from app.seals.registry import revoke_document
from app.seals.signatures import PersonalSignature
from app.seals.trust import trust_settings
from app.seals.verification import verify_upload
from seals import pki as pki_lib
from seals.keys import SoftwareKeyProvider
from seals.signing import ProviderSigner, TrustSettings, sign_pdf
from seals.verify import verify_pdf
from tests.factories.seals import pdfsig, stored_pdf

needs = {
    tool: shutil.which(tool) for tool in ("pdfsig", "pdffonts", "certutil", "zbarimg", "pdftoppm")
}


def _skip_without(*tools: str) -> pytest.MarkDecorator:
    missing = [t for t in tools if not needs[t]]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"needs {', '.join(missing)} "
        "(apt-get install poppler-utils libnss3-tools zbar-tools)",
    )


@pytest.fixture
def sealed(create_seal_for, issue_certificate, seal_context):  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    document = issue_certificate(seal)
    return seal, document, stored_pdf(seal_context, document)


def test_issued_certificate_validates_and_matches_the_registry(
    sealed, session, seal_context
) -> None:  # type: ignore[no-untyped-def]
    seal, document, pdf = sealed
    result = verify_upload(session, seal_context, pdf, now=utcnow())
    assert result["status"] == "valid"
    assert result["registry"] == {
        "found": True,
        "matches": True,
        "document_id": document.public_id,
        "status": "valid",
        "number": document.number,
    }
    (signature,) = result["signatures"]
    assert signature["intact"] and signature["valid"] and signature["trusted"]
    assert signature["certification"] is True
    assert signature["covers_whole_document"] is True
    assert signature["signer"] == seal.name


def test_every_use_is_recorded_with_the_document_hash(sealed, session) -> None:  # type: ignore[no-untyped-def]
    seal, document, _pdf = sealed
    use = session.scalars(select(SealUse).where(SealUse.document_id == document.id)).one()
    assert use.outcome == "signed" and use.document_sha256 == document.sha256
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "seal.used")).all()[-1]
    assert entry.details["sha256"] == document.sha256 and entry.details["seal"] == seal.code


def test_one_changed_byte_in_the_signed_range_is_tampered(sealed, seal_context, session) -> None:  # type: ignore[no-untyped-def]
    _seal, _document, pdf = sealed
    forged = _flip_in_content(pdf)
    result = verify_upload(session, seal_context, forged, now=utcnow())
    assert result["status"] == "tampered"
    assert result["signatures"][0]["intact"] is False


def _flip_in_content(pdf: bytes) -> bytes:
    # A byte of the page's title, well inside the first signed range.
    index = pdf.index(b"/Title") + 8
    forged = bytearray(pdf)
    forged[index] ^= 0x01
    return bytes(forged)


def test_content_appended_after_signing_is_reported_modified(sealed, seal_context, session) -> None:  # type: ignore[no-untyped-def]
    _seal, _document, pdf = sealed
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.root["/Lang"] = writer.root.get("/Lang", None) or __import__(
        "pyhanko.pdf_utils.generic", fromlist=["x"]
    ).TextStringObject("en")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    result = verify_upload(session, seal_context, out.getvalue(), now=utcnow())
    assert result["status"] == "modified"
    assert result["signatures"][0]["covers_whole_document"] is False


def test_a_signature_outside_our_trust_roots_is_untrusted(seal_context, session) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    foreign_keys = SoftwareKeyProvider({"x": b"f" * 32})
    foreign, _files = pki_lib.init_dev_pki(
        foreign_keys, crl_base_url="http://foreign.invalid/crl", now=now
    )
    key = foreign_keys.generate("foreign-seal")
    cert = pki_lib.issue_seal_certificate(
        foreign,
        foreign_keys,
        foreign_keys.public_key(key),
        seal_name="伪造印章",
        organisation="某单位",
        seal_kind_label="公章",
        seal_code="0000000000000",
        not_before=now,
        not_after=now + dt.timedelta(days=1),
    )
    foreign_trust = TrustSettings(
        [foreign.root],
        [foreign.issuing.certificate],
        [
            pki_lib.build_crl(foreign.issuing, foreign_keys, [], now=now),
            pki_lib.build_crl(foreign.root_ca, foreign_keys, [], now=now),  # type: ignore[arg-type]
        ],
    )
    from seals.documents import DocumentSpec, render_document

    rendered = render_document(
        DocumentSpec("伪造证明", "1", "某单位", now.date(), [("持证人", "张三")]),
        seal_context.fonts,
    )
    pdf = sign_pdf(
        rendered.pdf,
        ProviderSigner(foreign_keys, key, cert, foreign.chain),
        field_name="S",
        appearance=None,
        trust=foreign_trust,
        certify=True,
    )
    assert verify_pdf(pdf, foreign_trust).status == "valid"
    result = verify_upload(session, seal_context, pdf, now=now)
    assert result["signatures_status"] == "untrusted" and result["status"] == "untrusted"
    assert result["signatures"][0]["trusted"] is False


def test_unauthorised_use_is_refused_and_audited(
    create_seal_for, issue_certificate, session
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for(matters=["drainage_permit"])
    with pytest.raises(errors.SealUseForbidden):
        issue_certificate(seal)  # the system acting for a matter the seal is not authorised for
    with pytest.raises(errors.SealUseForbidden):
        issue_certificate(
            seal, actor=SealActor("staff", 7, ("reviewer",), {"reviewer": [seal.department_id + 1]})
        )
    refusals = session.scalars(select(SealUse).where(SealUse.seal_id == seal.id)).all()
    assert [r.outcome for r in refusals] == ["refused", "refused"]
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "seal.use_refused")).all()


def test_a_revoked_suspended_or_expired_seal_cannot_sign(
    create_seal_for, issue_certificate, session, seal_context
) -> None:  # type: ignore[no-untyped-def]
    from app.audit.service import Actor

    now = utcnow()
    suspended = create_seal_for()
    change_seal_status(
        session, seal_context, suspended, SealStatus.SUSPENDED, actor=Actor.system(), now=now
    )
    with pytest.raises(errors.SealNotUsable):
        issue_certificate(suspended)
    revoked = create_seal_for()
    change_seal_status(
        session, seal_context, revoked, SealStatus.REVOKED, actor=Actor.system(), now=now
    )
    with pytest.raises(errors.SealNotUsable):
        issue_certificate(revoked)
    expired = create_seal_for(now=now - dt.timedelta(days=10), valid_for=dt.timedelta(days=1))
    with pytest.raises(errors.SealNotUsable):
        issue_certificate(expired)


def test_revoking_a_seal_puts_its_certificate_on_the_crl_and_shows_on_its_documents(
    sealed, session, seal_context
) -> None:  # type: ignore[no-untyped-def]
    from app.audit.service import Actor

    seal, _document, pdf = sealed
    change_seal_status(
        session, seal_context, seal, SealStatus.REVOKED, actor=Actor.system(), now=utcnow()
    )
    crl = trust_settings(session, seal_context, utcnow()).crls[0]
    assert (
        crl.get_revoked_certificate_by_serial_number(int(seal.certificate.serial_hex, 16))
        is not None
    )
    assert verify_upload(session, seal_context, pdf, now=utcnow())["status"] == "revoked"


def test_revoked_and_superseded_documents_show_in_verification(
    create_seal_for, issue_certificate, session, seal_context
) -> None:  # type: ignore[no-untyped-def]
    from app.audit.service import Actor

    seal = create_seal_for()
    first = issue_certificate(seal)
    second = issue_certificate(seal, supersedes=first)
    assert first.status == DocumentStatus.SUPERSEDED and first.superseded_by_id == second.id
    assert (
        verify_upload(session, seal_context, stored_pdf(seal_context, first), now=utcnow())[
            "status"
        ]
        == "superseded"
    )
    revoke_document(session, second, actor=Actor.system(), now=utcnow(), reason="测试")
    assert (
        verify_upload(session, seal_context, stored_pdf(seal_context, second), now=utcnow())[
            "status"
        ]
        == "revoked"
    )


def test_a_letter_carries_the_applicants_signature_then_the_seal(  # type: ignore[no-untyped-def]
    create_seal_for, create_verified_user, session, seal_context, field_cipher, signature_png
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
    result = verify_upload(session, seal_context, stored_pdf(seal_context, document), now=utcnow())
    assert result["status"] == "valid", [
        (
            s["status"],
            s["modification"],
            s["docmdp_ok"],
            s["covers_whole_document"],
            s["certification"],
        )
        for s in result["signatures"]
    ]
    applicant, department = result["signatures"]
    assert applicant["certification"] is True and applicant["valid"] and applicant["trusted"]
    assert applicant["signer"] and applicant["signer_organisation"] == "个人"  # the verified person
    assert department["signer"] == seal.name and department["covers_whole_document"]
    assert document.holder_masked != "张三" and "*" in document.holder_masked


# ------------------------------------------------------------------ external tools


@_skip_without("pdfsig", "certutil")
def test_pdfsig_finds_the_signature_valid_trusted_and_total(sealed, nss_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _seal, _document, pdf = sealed
    output = pdfsig(nss_db, pdf, tmp_path)
    assert "Signature is Valid." in output, output
    assert "Certificate is Trusted." in output, output
    assert "Total document signed" in output, output


@_skip_without("pdfsig", "certutil")
def test_pdfsig_reports_a_changed_byte(sealed, nss_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _seal, _document, pdf = sealed
    output = pdfsig(nss_db, _flip_in_content(pdf), tmp_path)
    assert "Signature is Valid." not in output
    assert "Digest Mismatch" in output or "Invalid" in output, output


@_skip_without("pdffonts")
def test_every_font_is_embedded(sealed, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _seal, _document, pdf = sealed
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    lines = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert lines, "the document has fonts"
    for line in lines:
        emb, sub = line.split()[-5:-3]
        assert (emb, sub) == ("yes", "yes"), line


@_skip_without("pdftoppm", "zbarimg")
def test_the_qr_code_decodes_to_the_verification_url_which_reports_valid(
    sealed, tmp_path, client
) -> None:  # type: ignore[no-untyped-def]
    _seal, document, pdf = sealed
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-singlefile", str(path), str(tmp_path / "page")],
        check=True,
    )
    decoded = subprocess.run(
        ["zbarimg", "-q", "--raw", str(tmp_path / "page.png")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    match = re.fullmatch(
        r"http://127\.0\.0\.1:5000/s/([A-Z2-7]{10}-[A-Za-z0-9][A-Z2-7]{8})", decoded
    )
    assert match, decoded
    code = match.group(1)
    assert code.startswith(document.public_id)
    page = client.get(f"/s/{code}")
    assert page.status_code == 200 and 'data-status="valid"' in page.get_data(as_text=True)
    body = client.get(f"/api/v1/seals/verify/{code}").get_json()
    assert body["status"] == "valid" and body["document_id"] == document.public_id

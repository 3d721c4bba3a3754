"""The seals library alone: keys, codes, the seal image."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from seals.codes import CodeSigner
from seals.image import DEFAULT_SIZE, SEAL_RED, SealDesign, render_seal
from seals.keys import KeyError_, KeyRef, SoftwareKeyProvider


def test_software_keys_are_envelope_encrypted_and_sign() -> None:
    provider = SoftwareKeyProvider({"m1": os.urandom(32)})
    key = provider.generate("seal-1")
    assert b"PRIVATE" not in key.material and b"seal-1" in key.material  # label, never the key
    signature = provider.sign(key, b"document")
    public = provider.public_key(key)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"document", ec.ECDSA(hashes.SHA256()))


def test_a_key_does_not_open_under_another_master_key_or_label() -> None:
    key = SoftwareKeyProvider({"m1": os.urandom(32)}).generate("seal-1")
    with pytest.raises(KeyError_):
        SoftwareKeyProvider({"m1": os.urandom(32)}).open(key)
    with pytest.raises(KeyError_):
        SoftwareKeyProvider({"m1": os.urandom(32)}).open(
            KeyRef(key.provider, "seal-2", key.algorithm, key.material)
        )


def test_master_key_rotation_rewraps_without_changing_the_key() -> None:
    old = os.urandom(32)
    key = SoftwareKeyProvider({"old": old}).generate("seal-1")
    rotated = SoftwareKeyProvider({"new": os.urandom(32), "old": old})
    rewrapped = rotated.rewrap(key)
    assert b'"kek":"new"' in rewrapped.material
    assert rotated.public_key(rewrapped) == rotated.public_key(key)


def test_verification_codes_carry_a_keyed_tag() -> None:
    signer = CodeSigner({"k": b"a-secret-of-16-chars", "j": b"an-older-secret-16-chars"})
    code = signer.code_for("ABCDEFGHJK")
    assert len(code) == 20 and code.startswith("ABCDEFGHJK-k")
    assert signer.document_id(code) == "ABCDEFGHJK"
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert signer.document_id(forged) is None
    assert signer.document_id("ABCDEFGHJL" + code[10:]) is None
    assert signer.document_id("../../etc") is None
    assert (
        CodeSigner({"j": b"an-older-secret-16-chars"}).document_id(
            CodeSigner({"j": b"an-older-secret-16-chars"}).code_for("ZZZZZZZZZZ")
        )
        == "ZZZZZZZZZZ"
    )


def test_the_seal_image_is_round_red_transparent_and_print_sized(
    seal_context, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    image = render_seal(
        SealDesign("广州市番禺区气象局", "审批专用章", "4401130210001"), seal_context.fonts
    )
    assert image.mode == "RGBA" and image.size == (DEFAULT_SIZE, DEFAULT_SIZE)
    # Corners and the gap between ring and text are transparent; the ring is opaque red.
    assert (
        image.getpixel((0, 0))[3] == 0
        and image.getpixel((DEFAULT_SIZE - 1, DEFAULT_SIZE - 1))[3] == 0
    )
    ring = image.getpixel((DEFAULT_SIZE // 2, int(DEFAULT_SIZE * 0.02)))
    assert ring[3] == 255 and ring[:3] == SEAL_RED
    centre = image.getpixel((DEFAULT_SIZE // 2, DEFAULT_SIZE // 2))  # the star
    assert centre[3] == 255 and centre[:3] == SEAL_RED
    opaque = [p for p in image.getdata() if p[3] > 200]
    assert all(r > 150 and g < 80 and b < 80 for r, g, b, _a in opaque)  # only red ink
    assert 0.08 < len(opaque) / DEFAULT_SIZE**2 < 0.4
    # Text along the arc: ink between the ring and the star, above the centre.
    band = image.crop(
        (
            DEFAULT_SIZE // 4,
            int(DEFAULT_SIZE * 0.08),
            DEFAULT_SIZE * 3 // 4,
            int(DEFAULT_SIZE * 0.2),
        )
    )
    assert any(p[3] > 200 for p in band.getdata())
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == "RGBA"


SOFTHSM_LIBRARIES = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
]


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    library = next((p for p in SOFTHSM_LIBRARIES if Path(p).exists()), None)
    if library is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(config))
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "seals",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ],
        check=True,
        capture_output=True,
    )
    return library, "seals", "1234"


def test_pkcs11_keys_stay_in_the_token_and_sign_documents(softhsm, seal_context) -> None:  # type: ignore[no-untyped-def]
    from seals import pki as pki_lib
    from seals.documents import DocumentSpec, render_document
    from seals.keys import Pkcs11KeyProvider
    from seals.signing import ProviderSigner, TrustSettings, sign_pdf
    from seals.verify import verify_pdf

    provider = Pkcs11KeyProvider(*softhsm)
    key = provider.generate("seal-hsm-1")
    assert key.material == b""  # nothing of the private key leaves the token
    public = provider.public_key(key)
    public.verify(provider.sign(key, b"data"), b"data", ec.ECDSA(hashes.SHA256()))

    now = dt.datetime.now(dt.UTC)
    pki = seal_context.pki
    cert = pki_lib.issue_seal_certificate(
        pki,
        seal_context.software,
        public,
        seal_name="硬件印章",
        organisation="测试局",
        seal_kind_label="公章",
        seal_code="4401130000009",
        not_before=now,
        not_after=now + dt.timedelta(days=1),
    )
    crls = [pki_lib.build_crl(pki.issuing, seal_context.software, [], now=now)]
    trust = TrustSettings([pki.root], [pki.issuing.certificate], crls)
    rendered = render_document(
        DocumentSpec("测试证明", "1", "测试局", now.date(), [("持证人", "某公司")]),
        seal_context.fonts,
    )
    signed = sign_pdf(
        rendered.pdf,
        ProviderSigner(provider, key, cert, pki.chain),
        field_name="Seal",
        appearance=None,
        trust=trust,
        certify=True,
    )
    assert verify_pdf(signed, trust).status == "valid"


def test_production_refuses_the_development_seal_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from config import DEV_SEAL_MASTER_KEY, ConfigError, load_config
    from tests.core.test_config import SAFE_PRODUCTION

    for name, value in SAFE_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    load_config("production")
    monkeypatch.setenv("SEAL_MASTER_KEY", DEV_SEAL_MASTER_KEY)
    with pytest.raises(ConfigError, match="SEAL_MASTER_KEY"):
        load_config("production")

# ruff: noqa: E501  (printed tables and long fixtures read better unwrapped)
"""Benchmark: render + seal-sign a one-page certificate, and verify it.

In one process, with a throwaway PKI and a software seal key, alternating in rounds:

- baseline: pyHanko signing the same pre-rendered PDF with its own signer class (`SimpleSigner`
  holding the same key and chain; same appearance, DSS), the cost of signing alone as pyHanko
  does it out of the box;
- our signing alone: the same, with the project's `ProviderSigner` (the key in its provider,
  the signing-certificate-v2 attribute encoded once per signer), for information;
- render + sign: `render_document` (fpdf2, CJK subset font, table, QR) then the same signing,
  with a different holder, place and number on every document (as in production: no two
  documents use the same glyphs, so nothing per-document can come from a cache);
- verify: `verify_pdf` of the signed file against the trust roots.

Targets: render+sign p95 <= 150 ms and within 1.5x the baseline p95; verify p95 <= 100 ms.
The ratio to our own signing alone is printed beside it: since the signer stopped re-encoding
its attribute, rendering is the larger part of render + sign.
The CJK font subset is built once beforehand (first use on a fresh machine takes ~15 s); the
per-document font (only the glyphs a document uses) is packed from it on every render. "render
only" is printed for information: the share of render + sign that is rendering.

    .venv/bin/python bench/seal_sign.py [--runs 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seals import pki as pki_lib
from seals.documents import DocumentSpec, render_document
from seals.fonts import FontSet, subset_characters
from seals.image import SealDesign, render_seal
from seals.keys import SoftwareKeyProvider
from seals.signing import (
    Appearance,
    PreparedImage,
    ProviderSigner,
    TrustSettings,
    sign_pdf,
    to_asn1_cert,
)
from seals.verify import verify_pdf

FONT_CACHE = Path(
    os.environ.get(
        "SEAL_FONT_CACHE_DIR", Path(__file__).resolve().parent.parent / "var" / "cache" / "fonts"
    )
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    now = dt.datetime.now(dt.UTC)
    provider = SoftwareKeyProvider({"bench": os.urandom(32)})
    pki, _files = pki_lib.init_dev_pki(
        provider, crl_base_url="http://127.0.0.1:5000/seals/crl", now=now
    )
    key = provider.generate("bench-seal")
    cert = pki_lib.issue_seal_certificate(
        pki,
        provider,
        provider.public_key(key),
        seal_name="番禺区气象局审批专用章",
        organisation="番禺区气象局",
        seal_kind_label="审批专用章",
        seal_code="4401130220001",
        not_before=now,
        not_after=now + dt.timedelta(days=30),
    )
    assert pki.root_ca is not None  # a development PKI has its root CA's key
    trust = TrustSettings(
        [pki.root],
        [pki.issuing.certificate],
        [
            pki_lib.build_crl(pki.issuing, provider, [], now=now),
            pki_lib.build_crl(pki.root_ca, provider, [], now=now),
        ],
    )
    fonts = FontSet(FONT_CACHE)
    _ = fonts.subset_path  # build the subset outside the measurement
    # As the app does: the seal's image is drawn when the seal is made and encoded for PDF once.
    seal_image = PreparedImage.from_image(
        render_seal(SealDesign("番禺区气象局", "审批专用章", "4401130220001"), fonts)
    )
    signer = ProviderSigner(provider, key, cert, pki.chain)
    stock_signer = signers.SimpleSigner(
        signing_cert=to_asn1_cert(cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            provider.open(key).private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([to_asn1_cert(c) for c in pki.chain]),
    )
    hanzi = [c for c in subset_characters() if "\u4e00" <= c <= "\u9fff"]
    chooser = random.Random(20261204)

    def spec_for(number: int) -> DocumentSpec:
        """A certificate for another holder, at another place, under another number."""
        holder = "广州市番禺区" + "".join(chooser.sample(hanzi, 4)) + "有限公司"
        place = (
            "番禺区"
            + "".join(chooser.sample(hanzi, 3))
            + "路"
            + str(chooser.randint(1, 300))
            + "号"
        )
        code = f"{number:010d}-d{chooser.randrange(16**8):08X}"
        return DocumentSpec(
            title="气象证明",
            number=f"番气证〔2026〕{number:010d}号",
            issuer="番禺区气象局",
            issued_on=now.date(),
            fields=[
                ("申请单位/个人", holder),
                ("证件号码", "91440113MA5XXXXX0X"),
                ("证明用途", "保险理赔"),
                ("地点", place),
                ("时段", "2026年2月14日"),
            ],
            paragraphs=[
                "经查询番禺区国家气象观测站资料，兹证明上述时段该地点的气象实况如下表所示。"
            ],
            table=[["日期", "降雨量（毫米）", "最大风速（米/秒）"], ["2026-02-14", "56.3", "12.1"]],
            verify_url=f"http://127.0.0.1:5000/s/{code}",
            verify_code=code,
        )

    prerendered = render_document(spec_for(0), fonts)

    def sign(pdf: bytes, with_signer: Any = signer) -> bytes:
        return sign_pdf(
            pdf,
            with_signer,
            field_name="Seal",
            appearance=Appearance(prerendered.seal_box, seal_image),
            trust=trust,
            certify=True,
        )

    for number in range(1, 4):  # warm caches (font template, imports)
        verify_pdf(sign(render_document(spec_for(number), fonts).pdf), trust)
        verify_pdf(sign(prerendered.pdf, stock_signer), trust)

    baseline: list[float] = []
    ours: list[float] = []
    full: list[float] = []
    verify: list[float] = []
    render_only: list[float] = []
    for run in range(args.runs):
        specs = spec_for(1000 + 2 * run), spec_for(1001 + 2 * run)
        start = time.perf_counter()
        sign(prerendered.pdf, stock_signer)
        baseline.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        sign(prerendered.pdf)
        ours.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        signed = sign(render_document(specs[0], fonts).pdf)
        full.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        report = verify_pdf(signed, trust)
        verify.append((time.perf_counter() - start) * 1000)
        assert report.status == "valid", report

        start = time.perf_counter()
        render_document(specs[1], fonts)
        render_only.append((time.perf_counter() - start) * 1000)

    print(
        f"seal_sign benchmark: {args.runs} runs, one-page certificate, another holder each time, ECDSA P-256 software key, B-LT (DSS)"
    )
    print(f"{'step':<28} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in (
        ("baseline: pyHanko sign only", baseline),
        ("(info) our signer only", ours),
        ("render + sign", full),
        ("verify", verify),
        ("(info) render only", render_only),
    ):
        print(f"{name:<28} {statistics.median(values):8.1f} {percentile(values, 0.95):8.1f}")
    full_p95, base_p95, verify_p95 = (
        percentile(full, 0.95),
        percentile(baseline, 0.95),
        percentile(verify, 0.95),
    )
    print(
        f"target render+sign p95 <= 150 ms: {'met' if full_p95 <= 150 else 'NOT met'} ({full_p95:.1f} ms)"
    )
    ratio = full_p95 / base_p95
    print(
        f"target render+sign within 1.5x baseline p95: {'met' if ratio <= 1.5 else 'NOT met'} ({ratio:.2f}x)"
        f"; (info) {full_p95 / percentile(ours, 0.95):.2f}x our signer's p95"
    )
    print(
        f"target verify p95 <= 100 ms: {'met' if verify_p95 <= 100 else 'NOT met'} ({verify_p95:.1f} ms)"
    )


if __name__ == "__main__":
    main()

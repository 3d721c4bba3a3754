"""Factories for seals: a per-session PKI in a temp folder, seals, issued documents."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.db import utcnow
from app.organisation.models import Department
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, create_seal
from app.seals.models import IssuedDocument, Seal, SealKind
from seals import pki as pki_lib


@pytest.fixture(scope="session")
def seal_context(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SealContext]:
    """The app's seal context, with a PKI generated for this test session in a temp folder
    and the CJK subset font ready."""
    base = tmp_path_factory.mktemp("seals")
    config = dict(app.config)
    config.update(SEAL_PKI_DIR=str(base / "pki"), SEAL_STORAGE_DIR=str(base / "documents"))
    ctx = SealContext.from_config(config)
    _pki, files = pki_lib.init_dev_pki(ctx.software, crl_base_url=ctx.crl_base_url, now=utcnow())
    pki_lib.write_pki(ctx.pki_dir, files)
    # The subset font is built once per checkout (var/ is not in git: ~11 s on a fresh one,
    # far more on a loaded CI machine). Left to first use, that cost landed inside whichever
    # test first drew text (the first seals API test, in file order), which then looked slow
    # in a full run and fast alone. It is part of preparing the session, so it is done here.
    _ = ctx.fonts.subset_path
    previous = app.extensions.get("seals")
    app.extensions["seals"] = ctx
    yield ctx
    if previous is not None:
        app.extensions["seals"] = previous


@pytest.fixture
def create_seal_for(
    session: Session, seal_context: SealContext, create_department: Callable[..., Department]
) -> Callable[..., Seal]:
    """A seal: `create_seal_for(department=..., kind=SealKind.APPROVAL, templates=[...],
    matters=[...])`."""

    def create(
        *,
        department: Department | None = None,
        kind: SealKind = SealKind.APPROVAL,
        roles: list[str] | None = None,
        templates: list[str] | None = None,
        matters: list[str] | None = None,
        valid_for: dt.timedelta = dt.timedelta(days=365),
        now: dt.datetime | None = None,
    ) -> Seal:
        now = now or utcnow()
        return create_seal(
            session,
            seal_context,
            department=department or create_department(),
            kind=kind,
            valid_until=now + valid_for,
            authorised_roles=roles if roles is not None else ["reviewer"],
            authorised_templates=(
                templates if templates is not None else ["meteorological_certificate"]
            ),
            authorised_matters=matters if matters is not None else ["meteorological_certificate"],
            actor=Actor.system(),
            now=now,
        )

    return create


WEATHER_DATA: dict[str, Any] = {
    "purpose": "保险理赔",
    "place": "番禺区市桥街道",
    "period": "2026年2月14日",
    "observations": [
        ["日期", "降雨量（毫米）", "最大风速（米/秒）"],
        ["2026-02-14", "56.3", "12.1"],
    ],
}


@pytest.fixture
def issue_certificate(session: Session, seal_context: SealContext) -> Callable[..., IssuedDocument]:
    """Issue a 气象证明 under `seal` as the rule engine (system actor) would."""

    def issue(seal: Seal, **overrides: Any) -> IssuedDocument:
        kwargs: dict[str, Any] = {
            "template": "meteorological_certificate",
            "holder": Holder(name="广州市番禺区某某建筑有限公司", id_number="91440113MA5XXXXX0G"),
            "data": WEATHER_DATA,
            "actor": SealActor("system"),
            "now": utcnow(),
            "matter": "meteorological_certificate",
        }
        kwargs.update(overrides)
        return issue_document(session, seal_context, seal=seal, **kwargs)

    return issue


def handwriting_png() -> bytes:
    """A canvas-like PNG of a signature: black strokes on white."""
    image = Image.new("RGB", (600, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.line(
        [(40, 180), (160, 60), (220, 170), (330, 70), (420, 190), (560, 90)], fill="black", width=9
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def signature_png() -> bytes:
    return handwriting_png()


def stored_pdf(ctx: SealContext, document: IssuedDocument) -> bytes:
    return (Path(ctx.storage_dir) / document.storage_key).read_bytes()


@pytest.fixture
def nss_db(tmp_path: Path, seal_context) -> Path:  # type: ignore[no-untyped-def]
    """An NSS database trusting our root, as a PDF reader on a desk would."""

    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True
    )
    root = tmp_path / "root.pem"
    root.write_bytes(seal_context.pki.root.public_bytes(serialization.Encoding.PEM))
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{db}",
            "-n",
            "yuhaoban-root",
            "-t",
            "CT,C,C",
            "-i",
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    return db


def pdfsig(db: Path, pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    # pdfsig exits 0 whatever it finds; what it prints is the verdict.
    done = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{db}", str(path)], capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr

"""A serving worker builds the seal's font caches before its first request.

The first sealed document of a process parsed the font's metrics (fpdf2's `add_font`), built
the glyph store and the covered-characters set: ~0.25 s added to whichever applicant's 秒批
came first after a start or a reload, and the 秒批 p99 of the rush bench was those requests.
"""

from __future__ import annotations

import gc
import runpy
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from fpdf import FPDF
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db import utcnow
from app.runtime import warm_caches
from app.seals import signatures
from app.seals.context import SealContext
from app.seals.models import IssuedDocument, Seal, SealCertificate
from app.seals.warm_up import warm_signing
from seals.fonts import FontSet
from seals.keys import SoftwareKeyProvider

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cold_fonts(app: Flask, seal_context: Any) -> Any:
    """The app's seal context with a font set that has built nothing yet."""
    saved = app.extensions["seals"].fonts
    app.extensions["seals"].fonts = FontSet(seal_context.fonts.cache_dir)
    yield app.extensions["seals"].fonts
    app.extensions["seals"].fonts = saved


def _refuse_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the font was parsed while a document was made")

    monkeypatch.setattr(FPDF, "add_font", parse)


def test_a_warmed_worker_makes_its_first_document_without_parsing_the_font(
    app: Flask, cold_fonts: FontSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = warm_caches(app)
    if thread is not None:
        thread.join(timeout=60)
    _refuse_parsing(monkeypatch)
    pdf = FPDF()
    cold_fonts.add_to_pdf(pdf, "notoserif")
    assert "notoserif" in pdf.fonts
    assert cold_fonts.covers("番禺区市桥街")


def test_a_cold_font_set_parses_the_font_on_first_use(
    cold_fonts: FontSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the warm-up spares (so the test above can fail)."""
    _refuse_parsing(monkeypatch)
    with pytest.raises(AssertionError, match="parsed"):
        cold_fonts.add_to_pdf(FPDF(), "notoserif")


def _join_signing_warm_up() -> None:
    for thread in threading.enumerate():
        if thread.name == "warm-signing":
            thread.join(timeout=60)


def test_gunicorn_warms_each_worker_before_it_serves(
    app: Flask, cold_fonts: FontSet, seal_context: SealContext
) -> None:
    seal_context.trust_cache.clear()
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    try:
        config["post_worker_init"](SimpleNamespace(wsgi=app))
    finally:
        gc.unfreeze()  # the hook freezes the heap, as a worker should; this process is a test
        _join_signing_warm_up()
    assert cold_fonts._fpdf_templates, "the worker hook left the font unparsed"
    assert "current" in seal_context.trust_cache, "the signing caches were not warmed"


def test_a_failed_warm_up_leaves_the_worker_starting(
    app: Flask, cold_fonts: FontSet, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken() -> None:
        raise OSError("font cache unreadable")

    monkeypatch.setattr(cold_fonts, "warm", broken)
    warm_caches(app)
    assert "seal caches left cold" in caplog.text


def test_the_hook_leaves_another_wsgi_app_to_start() -> None:
    """gunicorn reads ./gunicorn.conf.py for any app started from the project's directory: the
    benches' hand-written floors (bench/minimal_take.py, minimal_login.py) have no seals, and
    their workers died on the warm-up ('seals' KeyError) before serving a request."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    try:
        config["post_worker_init"](SimpleNamespace(wsgi=Flask("floor")))
    finally:
        gc.unfreeze()


# -- the signing caches: need the database, built while the worker serves ----------------------


def _cold_signing(ctx: SealContext) -> None:
    ctx.crl_cache.clear()
    ctx.trust_cache.clear()
    ctx.signer_cache.clear()
    ctx.image_cache.clear()


def _rows(session: Session) -> tuple[int | None, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (IssuedDocument, SealCertificate, AuditEntry, Seal)
    )


def test_warming_signing_builds_each_seals_signer_and_writes_nothing(
    session: Session, seal_context: SealContext, create_seal_for: Callable[..., Seal]
) -> None:
    seals = [create_seal_for(), create_seal_for()]
    session.flush()
    _cold_signing(seal_context)
    rows, files = _rows(session), sorted(seal_context.storage_dir.glob("*"))

    warmed = warm_signing(session, seal_context, utcnow())

    assert warmed == len(seals)
    assert len(seal_context.signer_cache) == len(seals)
    assert len(seal_context.image_cache) >= 1 and "current" in seal_context.trust_cache
    assert not session.new and not session.dirty
    assert _rows(session) == rows
    assert sorted(seal_context.storage_dir.glob("*")) == files


def test_a_document_after_the_warm_up_builds_no_signer(
    session: Session,
    seal_context: SealContext,
    create_seal_for: Callable[..., Seal],
    issue_certificate: Callable[..., IssuedDocument],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seal = create_seal_for()
    session.flush()
    _cold_signing(seal_context)
    warm_signing(session, seal_context, utcnow())

    def build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a signer was built while a document was issued")

    monkeypatch.setattr(signatures, "ProviderSigner", build)
    assert issue_certificate(seal).public_id


def test_a_failed_signing_warm_up_leaves_the_worker_serving(
    app: Flask, seal_context: SealContext, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("database unreachable")

    monkeypatch.setattr("app.seals.warm_up.warm_signing", broken)
    thread = warm_caches(app)
    assert thread is not None
    thread.join(timeout=30)
    assert "seal signing caches left cold" in caplog.text


def test_warming_never_signs_with_a_seals_key(
    session: Session,
    seal_context: SealContext,
    create_seal_for: Callable[..., Seal],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every use of a seal's key is a sealed document, recorded in the seal's use log; the
    warm-up builds a signature's whole CMS around a placeholder instead."""
    create_seal_for()
    session.flush()
    _cold_signing(seal_context)

    def sign(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the warm-up used a seal's key")

    monkeypatch.setattr(SoftwareKeyProvider, "sign", sign)
    assert warm_signing(session, seal_context, utcnow()) == 1

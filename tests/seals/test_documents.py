"""Rendered documents: per-document font subsets, Chinese text, rare characters, threads."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from pyhanko.pdf_utils.reader import PdfFileReader

from seals.documents import DocumentSpec, render_document
from seals.fonts import FontSet

needs_poppler = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdffonts")),
    reason="needs pdftotext and pdffonts (apt-get install poppler-utils)",
)


def _spec(holder: str, *, number: str = "番气证〔2026〕0001号") -> DocumentSpec:
    return DocumentSpec(
        title="气象证明",
        number=number,
        issuer="番禺区气象局",
        issued_on=dt.date(2026, 2, 14),
        fields=[("申请单位/个人", holder), ("证明用途", "保险理赔")],
        paragraphs=["经查询番禺区国家气象观测站资料，兹证明上述时段该地点的气象实况。"],
        table=[["日期", "降雨量（毫米）"], ["2026-02-14", "56.3"]],
        verify_url="http://127.0.0.1:5000/s/ABCDEFGHJK-dABCDEFGH",
        verify_code="ABCDEFGHJK-dABCDEFGH",
    )


def _embedded_fonts(pdf: bytes) -> list[TTFont]:
    """The TrueType programs embedded in the PDF's fonts."""
    reader = PdfFileReader(io.BytesIO(pdf))
    page = reader.root["/Pages"]["/Kids"][0]
    fonts = []
    for ref in page["/Resources"]["/Font"].values():
        font = ref.get_object()
        descendant = font["/DescendantFonts"][0]
        program = descendant["/FontDescriptor"]["/FontFile2"].data
        fonts.append(TTFont(io.BytesIO(program)))
    return fonts


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _fonts_embedded_and_subset(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    lines = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    for line in lines:
        assert tuple(line.split()[-5:-3]) == ("yes", "yes"), line
    return lines


@pytest.fixture
def fonts(seal_context) -> FontSet:  # type: ignore[no-untyped-def]
    """A fresh font set (empty per-document cache) over the session's built subset font."""
    return FontSet(seal_context.fonts.cache_dir)


@needs_poppler
def test_a_document_embeds_only_the_glyphs_it_uses_and_reads_back(fonts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pdf = render_document(_spec("广州市番禺区某某建筑有限公司"), fonts).pdf
    [font] = _embedded_fonts(pdf)
    # A page of text needs a hundred or so glyphs, not the 7,500 of the GB 2312 subset.
    assert 20 < len(font.getGlyphOrder()) < 300
    assert len(pdf) < 120_000
    _fonts_embedded_and_subset(pdf, tmp_path)
    text = _text(pdf, tmp_path)
    for expected in ("气象证明", "广州市番禺区某某建筑有限公司", "降雨量（毫米）", "番禺区气象局"):
        assert expected in text, text
    assert "2026年2月14日" in text


def test_the_same_document_renders_to_the_same_bytes(fonts) -> None:  # type: ignore[no-untyped-def]
    assert (
        render_document(_spec("某某公司"), fonts).pdf
        == render_document(_spec("某某公司"), fonts).pdf
    )


def test_each_code_on_the_page_draws_its_own_glyph(fonts) -> None:  # type: ignore[no-untyped-def]
    # The embedded font is packed with each glyph at the id equal to its code (no CIDToGIDMap
    # stream): the outline and advance at each id must be the subset font's for that glyph.
    pdf = render_document(_spec("广州市番禺区甲乙丙丁有限公司"), fonts).pdf
    reader = PdfFileReader(io.BytesIO(pdf))
    page = reader.root["/Pages"]["/Kids"][0]
    [font_ref] = page["/Resources"]["/Font"].values()
    descendant = font_ref.get_object()["/DescendantFonts"][0]
    assert descendant["/CIDToGIDMap"] == "/Identity"
    cmap = font_ref.get_object()["/ToUnicode"].data.decode()
    [embedded] = _embedded_fonts(pdf)
    source = TTFont(fonts.subset_path)
    names_by_char = {chr(code): name for code, name in source.getBestCmap().items()}
    blocks = re.findall(r"beginbfchar\n(.*?)endbfchar", cmap, re.S)
    mapped = re.findall(r"<([0-9A-F]{4})> <([0-9A-F]{4})>", "".join(blocks))
    assert len(mapped) > 40
    order = embedded.getGlyphOrder()
    for cid, unicode in (pair for pair in mapped if pair[1] != "0000"):
        name = names_by_char[chr(int(unicode, 16))]
        glyph_id = int(cid, 16)
        assert embedded["hmtx"][order[glyph_id]] == source["hmtx"][name]
        drawn = embedded["glyf"][order[glyph_id]]
        expected = source["glyf"][name]
        assert (drawn.numberOfContours, getattr(drawn, "coordinates", None)) == (
            expected.numberOfContours,
            getattr(expected, "coordinates", None),
        )


@needs_poppler
def test_a_value_too_long_for_its_cell_wraps_inside_the_table(fonts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    holder = "广州市番禺区" + "某某建筑工程" * 8 + "有限公司"
    pdf = render_document(_spec(holder), fonts).pdf
    # -layout prints the label on the wrapped row's middle line, inside the value.
    text = _text(pdf, tmp_path).replace("\n", "").replace(" ", "").replace("申请单位/个人", "")
    assert holder in text
    assert "保险理赔" in text


@needs_poppler
def test_a_character_outside_gb2312_comes_from_the_full_font(fonts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert not fonts.covers("王堃")
    pdf = render_document(_spec("王堃"), fonts).pdf
    assert len(_fonts_embedded_and_subset(pdf, tmp_path)) == 2
    assert "王堃" in _text(pdf, tmp_path)


@needs_poppler
def test_documents_rendered_in_parallel_each_carry_their_own_text(fonts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    holders = [f"{name}有限公司" for name in ("甲乙", "丙丁", "戊己", "庚辛", "壬癸", "子丑")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        pdfs = list(pool.map(lambda h: render_document(_spec(h), fonts).pdf, holders * 2))
    for holder, pdf in zip(holders * 2, pdfs, strict=True):
        _fonts_embedded_and_subset(pdf, tmp_path)
        assert holder in _text(pdf, tmp_path)

"""The CJK font: Noto Serif SC (SIL OFL 1.1), pinned from PyPI (`pylopdf-fonts-zh-cn`).

A fresh machine has no Chinese system font, and drawing or embedding the full 11 MB CFF font
costs about ten times a subset. On first use the font is cut down to GB 2312 (6,763 hanzi plus
its symbols) and ASCII, its CFF outlines converted to TrueType (fpdf2 subsets `glyf` fonts
several times faster than CFF ones), and the result cached in a directory. Text with a
character outside the subset (rare names) falls back to the full font.

The OFL allows subsetting and embedding; the licence travels with the installed package
(`pylopdf_fonts_zh_cn-*.dist-info/licenses/LICENSE`).
"""

from __future__ import annotations

import copy
import io
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seals.identity_fonts import GlyphStore, IdentityFontProducer, embed_from_store

if TYPE_CHECKING:
    from fpdf.fonts import TTFFont

FONT_VERSION = "notoserifsc-gb2312-v1"
EXTRA_CHARS = "·•★☆○●—–‘’“”…、。，：；！？（）【】《》〈〉「」『』￥％＋－×÷＝"


def full_font_path() -> Path:
    """Noto Serif SC from the pinned package."""
    import pylopdf_fonts_zh_cn

    return Path(pylopdf_fonts_zh_cn.serif_path())


def subset_characters() -> set[str]:
    """GB 2312 (symbols and both levels of hanzi), printable ASCII and a few extras."""
    chars = {chr(c) for c in range(0x20, 0x7F)} | set(EXTRA_CHARS)
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            try:
                chars.add(bytes([first, second]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def _to_truetype(font: Any) -> None:
    """Replace CFF outlines by quadratic TrueType ones, in place."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attribute in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attribute, 0)
    maxp.maxZones = 1
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    font.sfntVersion = "\x00\x01\x00\x00"


def build_subset(source: Path, target: Path) -> Path:
    """Write the GB 2312 TrueType subset of `source` to `target` (atomically)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(source, recalcTimestamp=False)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    # The CFF table is dropped by `_to_truetype` (drawing outlines ignores hints), so asking
    # the subsetter to strip hints and prune subroutines from it is wasted work (a third of
    # the build). Expanding subroutines once is cheaper than pruning them; the result is the
    # same file.
    options.hinting = True
    options.desubroutinize = True
    options.layout_features = []
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in subset_characters()])
    subsetter.subset(font)
    _to_truetype(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    font.save(tmp)
    os.replace(tmp, target)  # concurrent builders each write their own file; last one wins
    return target


class FontSet:
    """The subset font (built once into `cache_dir`) and the full font as fallback."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)
        self._lock = threading.Lock()
        self._pil_cache: dict[tuple[str, int], Any] = {}
        self._fpdf_templates: dict[str, TTFFont] = {}

    @cached_property
    def subset_path(self) -> Path:
        path = self.cache_dir / f"{FONT_VERSION}.ttf"
        if not path.exists():
            with self._lock:
                if not path.exists():
                    build_subset(full_font_path(), path)
        return path

    @cached_property
    def subset_bytes(self) -> bytes:
        return self.subset_path.read_bytes()

    @cached_property
    def glyph_store(self) -> GlyphStore:
        return GlyphStore(self.subset_bytes)

    @cached_property
    def covered(self) -> frozenset[str]:
        return frozenset(subset_characters())

    def covers(self, text: str) -> bool:
        return all(c in self.covered or c in "\n\r\t" for c in text)

    def pillow_font(self, size: int, *, text: str = "") -> Any:
        """A Pillow FreeType font for `text` at `size` pixels."""
        from PIL import ImageFont

        path = self.subset_path if self.covers(text) else full_font_path()
        key = (str(path), size)
        font = self._pil_cache.get(key)
        if font is None:
            font = ImageFont.truetype(str(path), size)
            self._pil_cache[key] = font
        return font

    def warm(self) -> None:
        """Build now what the first document of a process would otherwise build: the covered
        set, the subset font's parsed metrics and its glyph store (~0.2 s together, paid by
        whichever applicant's approval came first after a worker started)."""
        _ = self.covered, self.glyph_store
        self._fpdf_template(self.subset_path)

    def _fpdf_template(self, path: Path) -> Any:
        """fpdf2's parsed font for `path`, parsed once per process."""
        from fpdf import FPDF
        from fpdf.fonts import TTFFont

        template = self._fpdf_templates.get(str(path))
        if template is None:
            scratch = FPDF()
            scratch.add_font("template", "", str(path))
            added = scratch.fonts["template"]
            if not isinstance(added, TTFFont):  # a file font always is; core fonts are not
                raise TypeError(f"{path} did not load as a TrueType font")
            template = self._fpdf_templates[str(path)] = added
        return template

    def add_to_pdf(self, pdf: Any, family: str, *, full: bool = False) -> None:
        """Register the font on an fpdf2 document, reusing parsed metrics across documents.

        fpdf2 parses a font's cmap and widths in `add_font` (~40 ms for this one) and then
        subsets the fontTools object in place when writing. So the parsed object is kept as a
        template and each document gets a shallow copy with its own subset map. The subset
        font is embedded by `output` from the glyphs the page used, without fpdf2's subsetting
        (see `seals.identity_fonts`). Relies on fpdf2's TTFFont attributes (pinned version;
        tested).
        """
        from fontTools.ttLib import TTFont
        from fpdf.fonts import SubsetMap

        path = full_font_path() if full else self.subset_path
        template = self._fpdf_template(path)
        font = copy.copy(template)
        # fpdf2 subsets `ttfont` in place, so the template's own must never reach it. The
        # subset font has none: `output` embeds it from the glyph store.
        if full:
            font.ttfont = TTFont(io.BytesIO(path.read_bytes()), recalcTimestamp=False, lazy=True)
        else:
            font.ttfont = None
            embed_from_store(pdf, family, self.glyph_store)
        font.i = len(pdf.fonts) + 1
        font.fontkey = family
        font.biggest_size_pt = 0
        font.missing_glyphs = []
        font._hbfont = None
        font.cw = copy.copy(template.cw)
        # fpdf2 sets the descriptor's object id while writing: one per document, so documents
        # written concurrently do not share it.
        font.desc = copy.copy(template.desc)
        font.subset = SubsetMap(font)
        pdf.fonts[family] = font

    def output(self, pdf: Any) -> bytes:
        """Write the document; the subset font embeds only the glyphs used, by glyph id."""
        return bytes(pdf.output(output_producer_class=IdentityFontProducer))

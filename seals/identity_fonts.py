"""Embedding the subset font in a document without subsetting it again.

fpdf2 writes each TrueType font by subsetting a fontTools object with fontTools' subsetter,
saving it, and mapping its own character codes to the new glyph ids through a 128 KB
CIDToGIDMap stream. For the CJK subset that is most of a document's rendering time (~6 ms of
~12), and more than signing it takes.

Here, for the subset font only, the embedded font is assembled from the outlines' raw bytes,
with each glyph placed at the glyph id equal to the code fpdf2 gave it. The CIDToGIDMap is then
`/Identity`, and nothing is decoded, subset or re-encoded: the glyf, loca and hmtx tables are
packed from bytes parsed once (`GlyphStore`), the other tables copied from the subset font with
their counts patched, and the file assembled by fontTools' own sfnt writer (checksums, table
directory). PDF needs no cmap in a CIDFontType2 program (ISO 32000-1, 9.9).

Other fonts (the full font a rare character falls back to) still go fpdf2's way. The producer
relies on fpdf2's font objects and output producer (pinned version); `tests/seals/` renders
with it and checks the text, the glyphs and the signatures.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from fontTools.ttLib import TTFont
from fontTools.ttLib.sfnt import SFNTWriter
from fpdf.output import (
    CIDSystemInfo,
    OutputProducer,
    PDFArray,
    PDFContentStream,
    PDFFont,
    PDFFontStream,
    _build_cmap_blocks,
    _tt_font_widths,
)
from fpdf.syntax import Name

# The tables of the subset font that are copied as they are (after patching counts).
_COPIED = ("head", "hhea", "maxp", "OS/2", "name", "cvt ", "fpgm", "prep", "gasp")


class GlyphStore:
    """The subset font parsed once: each glyph's raw outline bytes and metrics, by name."""

    def __init__(self, data: bytes) -> None:
        font = TTFont(io.BytesIO(data), recalcBBoxes=False, recalcTimestamp=False)
        self.order: list[str] = font.getGlyphOrder()
        self.index = {name: i for i, name in enumerate(self.order)}
        glyf = font["glyf"]
        # An unexpanded fontTools Glyph keeps its bytes in `data`; an empty glyph has none.
        self.outlines: dict[str, bytes] = {
            name: getattr(glyf.glyphs[name], "data", b"") or b"" for name in self.order
        }
        # A composite glyph names its parts by glyph index, which a new glyph order breaks.
        # The converted font (outlines drawn through a pen) has none: refuse one that has.
        if any(len(raw) >= 2 and raw[0] & 0x80 for raw in self.outlines.values()):
            raise ValueError("the subset font has composite glyphs: rebuild it")
        self.metrics: dict[str, tuple[int, int]] = dict(font["hmtx"].metrics)
        assert font.reader is not None  # opened from bytes
        self.tables = {tag: bytes(font.reader[tag]) for tag in _COPIED if tag in font.reader}
        self.post = _post_format_3(font)  # no glyph names: a PDF viewer never needs them

    def font_program(self, glyph_at: dict[int, str]) -> bytes:
        """A TrueType font whose glyph id `gid` is the glyph named `glyph_at[gid]` (0: .notdef)."""
        count = max(glyph_at, default=0) + 1
        glyf = bytearray()
        offsets = [0]
        hmtx = bytearray()
        for gid in range(count):
            name = glyph_at.get(gid, ".notdef" if gid == 0 else "")
            outline = self.outlines.get(name, b"")
            glyf += outline
            if len(glyf) % 4:
                glyf += b"\0" * (4 - len(glyf) % 4)
            offsets.append(len(glyf))
            advance, lsb = self.metrics.get(name, (0, 0))
            hmtx += struct.pack(">Hh", advance, lsb)
        tables = dict(self.tables)
        head = bytearray(tables["head"])
        struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment: the writer sets it
        struct.pack_into(">h", head, 50, 1)  # indexToLocFormat: long offsets
        tables["head"] = bytes(head)
        hhea = bytearray(tables["hhea"])
        struct.pack_into(">H", hhea, 34, count)  # numberOfHMetrics
        tables["hhea"] = bytes(hhea)
        maxp = bytearray(tables["maxp"])
        struct.pack_into(">H", maxp, 4, count)  # numGlyphs; the maxima stay valid bounds
        tables["maxp"] = bytes(maxp)
        tables["glyf"] = bytes(glyf)
        tables["loca"] = struct.pack(f">{len(offsets)}I", *offsets)
        tables["hmtx"] = bytes(hmtx)
        tables["post"] = self.post
        out = io.BytesIO()
        writer = SFNTWriter(out, len(tables), sfntVersion="\x00\x01\x00\x00")
        for tag in sorted(tables):
            writer[tag] = tables[tag]
        writer.close()
        return out.getvalue()


def _post_format_3(font: TTFont) -> bytes:
    post = font["post"]
    return struct.pack(
        ">IihhIIIII",
        0x00030000,
        round(post.italicAngle * 65536),
        post.underlinePosition,
        post.underlineThickness,
        post.isFixedPitch,
        0,
        0,
        0,
        0,
    )


class _FontProgram(PDFFontStream):
    # Deflate's fastest level: half the time of the default on a document's font (~0.25 ms),
    # for a stream about 6 % larger.
    _COMPRESSION_LEVEL = 1


class IdentityFontProducer(OutputProducer):
    """fpdf2's output, with fonts carrying a `glyph_store` embedded by glyph id = code."""

    def _add_fonts(self, *args: Any, **kwargs: Any) -> Any:
        fonts = self.fpdf.fonts
        stores: dict[str, GlyphStore] = getattr(self.fpdf, _STORES, {})
        registered = dict(fonts)
        ours = {key: font for key, font in registered.items() if key in stores}
        for key in ours:  # fpdf2 writes the others from its registry, in place
            del fonts[key]
        try:
            objects = super()._add_fonts(*args, **kwargs)
        finally:
            fonts.clear()
            fonts.update(registered)
        for key, font in sorted(ours.items(), key=lambda item: item[1].i):
            objects[font.i] = self._add_identity_font(font, stores[key])
        return objects

    def _add_identity_font(self, font: Any, store: GlyphStore) -> PDFFont:
        glyph_at = {code: glyph.glyph_name for glyph, code in font.subset.items() if glyph}
        fontname = f"MPDFAA+{font.name}"
        composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(
            subtype="CIDFontType2",
            base_font=fontname,
            d_w=font.desc.missing_width,
            w=_tt_font_widths(font),
        )
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])

        mappings = [
            f"<{code:04X}> <{''.join(_utf16_hex(c) for c in glyph.unicode)}>\n"
            for glyph, code in font.subset.items()
            if glyph is not None and isinstance(glyph.unicode, tuple) and glyph.unicode
        ]
        to_unicode = PDFContentStream(
            (
                "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                "/CIDSystemInfo\n<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
                "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
                f"{_build_cmap_blocks(mappings, 'bfchar')}"
                "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
            ).encode("latin-1")
        )
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode

        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info
        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor
        # A name is what the PDF takes here; fpdf2 types the attribute for its stream only.
        cid_font.c_i_d_to_g_i_d_map = Name("Identity")  # type: ignore[assignment]
        program = _FontProgram(contents=store.font_program(glyph_at))
        self._add_pdf_obj(program, "fonts")
        descriptor.font_file2 = program
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        return composite


_STORES = "glyph_stores_by_family"  # on the FPDF object: fpdf2's font objects take no attributes


def embed_from_store(pdf: Any, family: str, store: GlyphStore) -> None:
    """Have `IdentityFontProducer` embed `family` of `pdf` from `store`."""
    stores = getattr(pdf, _STORES, None)
    if stores is None:
        stores = {}
        setattr(pdf, _STORES, stores)
    stores[family] = store


def _utf16_hex(code: int) -> str:
    if code > 0xFFFF:
        high = 0xD800 | (code - 0x10000) >> 10
        low = 0xDC00 | (code & 0x3FF)
        return f"{high:04X}{low:04X}"
    return f"{code:04X}"

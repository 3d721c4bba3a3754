"""Certificates and letters as PDF (fpdf2), every font embedded and subset.

A document is laid out on one A4 page: title, document number, the holder's data in a table,
free paragraphs, a verification QR code with the same code printed beside it, the issuer and
date at the bottom right, and an empty box where the seal's signature appearance goes (and,
for letters, a box for the signer's handwriting and signature).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any, cast

import qrcode
import qrcode.constants
from fpdf import FPDF
from PIL import Image, ImageChops

from seals.fonts import FontSet

FONT = "cjk"
FONT_FULL = "cjkfull"
MM_TO_PT = 72 / 25.4
PAGE_HEIGHT_MM = 297.0
_HEADING_FILL = (240, 240, 240)
SEAL_SIZE_MM = 42.0


@dataclass(frozen=True)
class Box:
    """A rectangle on page 1 in PDF points from the bottom-left corner (x1, y1, x2, y2)."""

    x1: float
    y1: float
    x2: float
    y2: float

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (round(self.x1), round(self.y1), round(self.x2), round(self.y2))


@dataclass(frozen=True)
class DocumentSpec:
    """Everything printed on a document."""

    title: str
    number: str  # the document's own number, e.g. 番气证〔2026〕0001号
    issuer: str
    issued_on: dt.date
    fields: list[tuple[str, str]]  # the holder's data: label, value
    paragraphs: list[str] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)  # first row is the header
    verify_url: str = ""
    verify_code: str = ""
    signer_box: bool = False  # leave room for a personal signature (letters)
    signer_label: str = "承诺人"  # who signs there: 承诺人, 申请人


@dataclass(frozen=True)
class RenderedDocument:
    pdf: bytes
    seal_box: Box
    signer_box: Box | None


def _box_from_mm(x: float, y_top: float, w: float, h: float) -> Box:
    return Box(
        x * MM_TO_PT,
        (PAGE_HEIGHT_MM - y_top - h) * MM_TO_PT,
        (x + w) * MM_TO_PT,
        (PAGE_HEIGHT_MM - y_top) * MM_TO_PT,
    )


def _qr_image(url: str) -> Any:
    # A fixed mask: choosing the best of the eight costs as much as the rest of the code
    # (every document is sealed inside its request), and any mask reads the same.
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=2, mask_pattern=0
    )
    code.add_data(url)
    code.make(fit=True)
    # The module matrix as a one-pixel-per-module image, enlarged without smoothing: drawing
    # each module as a rectangle (qrcode's PIL image) costs a millisecond per code.
    matrix = code.get_matrix()
    size = len(matrix)
    modules = Image.frombytes(
        "L", (size, size), bytes(0 if dark else 255 for row in matrix for dark in row)
    )
    return modules.resize((size * 4, size * 4), Image.Resampling.NEAREST)


def _all_text(spec: DocumentSpec) -> str:
    parts = [spec.title, spec.number, spec.issuer, spec.verify_code, spec.signer_label]
    parts += spec.paragraphs
    parts += [t for row in spec.fields for t in row]
    parts += [t for row in spec.table for t in row]
    return "".join(parts)


def render_document(spec: DocumentSpec, fonts: FontSet) -> RenderedDocument:
    """Lay the document out on one A4 page; returns the PDF and where the seal goes."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creator("禺好办")
    pdf.set_title(spec.title)
    pdf.set_auto_page_break(False)
    # Fixed dates keep output deterministic; the signature carries the real signing time.
    pdf.set_creation_date(dt.datetime.combine(spec.issued_on, dt.time(), tzinfo=dt.UTC))
    fonts.add_to_pdf(pdf, FONT)
    if not fonts.covers(_all_text(spec)):
        # A character outside GB 2312 (a rare name): let fpdf2 take it from the full font.
        fonts.add_to_pdf(pdf, FONT_FULL, full=True)
        pdf.set_fallback_fonts([FONT_FULL])
    pdf.add_page()
    pdf.set_margins(20, 20, 20)

    pdf.set_draw_color(180, 30, 35)
    pdf.set_line_width(0.8)
    pdf.rect(10, 10, 190, 277)
    pdf.set_line_width(0.3)
    pdf.rect(12, 12, 186, 273)

    pdf.set_font(FONT, size=24)
    pdf.set_y(28)
    pdf.cell(0, 12, spec.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=11)
    pdf.cell(0, 8, spec.number, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    pdf.set_draw_color(0, 0, 0)
    pdf.set_font(FONT, size=11)
    _grid(pdf, [list(row) for row in spec.fields], widths=[45, 125], align=["C", "L"], height=8)
    pdf.ln(4)
    for paragraph in spec.paragraphs:
        pdf.multi_cell(0, 7, "　　" + paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    if spec.table:
        pdf.ln(2)
        columns = max(len(row) for row in spec.table)
        _grid(
            pdf,
            [row + [""] * (columns - len(row)) for row in spec.table],
            widths=[pdf.epw / columns] * columns,
            align=["C"] * columns,
            height=7,
            heading=True,
        )

    # The issuer and date sit under the seal, as on paper.
    seal_x, seal_top = 140.0, 222.0
    pdf.set_font(FONT, size=12)
    pdf.set_xy(118, seal_top + 16)
    pdf.cell(72, 7, spec.issuer, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(118, seal_top + 24)
    issued = f"{spec.issued_on.year}年{spec.issued_on.month}月{spec.issued_on.day}日"
    pdf.cell(72, 7, issued, align="C")

    signer_box = None
    if spec.signer_box:
        pdf.set_xy(24, seal_top + 2)
        pdf.cell(40, 7, f"{spec.signer_label}（签名）：")
        signer_box = _box_from_mm(24, seal_top + 10, 60, 24)

    if spec.verify_url:
        pdf.image(
            _qr_image(spec.verify_url), x=22 if not spec.signer_box else 90, y=250, w=28, h=28
        )
        pdf.set_font(FONT, size=8)
        x_text = 52 if not spec.signer_box else 120
        pdf.set_xy(x_text, 262)
        pdf.cell(0, 5, "扫码或访问以下地址核验真伪：", new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(x_text)
        pdf.cell(0, 5, spec.verify_url, new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(x_text)
        pdf.cell(0, 5, f"核验码：{spec.verify_code}")

    seal_box = _box_from_mm(seal_x, seal_top, SEAL_SIZE_MM, SEAL_SIZE_MM)
    return RenderedDocument(pdf=fonts.output(pdf), seal_box=seal_box, signer_box=signer_box)


def _grid(
    pdf: FPDF,
    rows: list[list[str]],
    *,
    widths: list[float],
    align: list[str],
    height: float,
    heading: bool = False,
) -> None:
    """A ruled table at the left margin: a cell whose text fits is one line, others wrap.

    fpdf2's `table()` lays out every cell twice through its line breaker; on a certificate
    almost every cell fits on one line, which one width sum tells.
    """
    padding = pdf.c_margin * 2
    for index, row in enumerate(rows):
        lines = [
            1
            if pdf.get_string_width(text) <= width - padding
            else len(
                cast(list[str], pdf.multi_cell(width, height, text, dry_run=True, output="LINES"))
            )
            for text, width in zip(row, widths, strict=True)
        ]
        row_height = height * max(lines)
        filled = heading and index == 0
        if filled:
            pdf.set_fill_color(*_HEADING_FILL)
        x, y = pdf.l_margin, pdf.get_y()
        for text, width, cell_align, count in zip(row, widths, align, lines, strict=True):
            pdf.rect(x, y, width, row_height, style="DF" if filled else "D")
            # A shorter cell is centred in its row, as fpdf2's tables do.
            pdf.set_xy(x, y + (row_height - height * count) / 2)
            if count == 1:
                pdf.cell(width, height, text, align=cell_align)
            else:
                pdf.multi_cell(width, height, text, align=cell_align)
            x += width
        pdf.set_xy(pdf.l_margin, y + row_height)


def handwriting_to_rgba(png: bytes, *, max_pixels: int = 1200 * 600) -> Image.Image:
    """The applicant's handwriting (a canvas PNG) with white made transparent."""
    opened = Image.open(io.BytesIO(png))
    opened.load()
    if opened.width * opened.height > max_pixels:
        opened.thumbnail((1200, 600))
    image = opened.convert("RGBA")
    red, green, blue, alpha = image.split()
    # 255 where all three channels are above 235 (paper white), 0 elsewhere; subtracting it
    # (clipped at 0) clears the alpha of white pixels and leaves every other pixel's alone.
    white = ImageChops.multiply(
        ImageChops.multiply(_above(red, 235), _above(green, 235)), _above(blue, 235)
    )
    image.putalpha(ImageChops.subtract(alpha, white))
    return image


def _above(channel: Image.Image, threshold: int) -> Image.Image:
    return channel.point([255 if value > threshold else 0 for value in range(256)])

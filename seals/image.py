"""The seal image: the standard round red seal, drawn with Pillow on a transparent canvas.

Red ring; the department's name along the upper arc; a five-pointed star in the centre; the
seal's purpose (e.g. 审批专用章) below it; the seal code along the lower edge. Drawn at four
times the final size and scaled down once, so the edges are smooth at print resolution
(600 px for a 42 mm seal is about 360 dpi). Rendered once when a seal is created.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

from seals.fonts import FontSet

SEAL_RED = (220, 30, 35)
INK = (*SEAL_RED, 255)
DEFAULT_SIZE = 600
SUPERSAMPLE = 4


@dataclass(frozen=True)
class SealDesign:
    """What the seal says."""

    organisation: str  # along the upper arc
    purpose: str = ""  # below the star: "审批专用章"; empty for the 公章
    code: str = ""  # along the lower edge


def _char_tile(fonts: FontSet, char: str, size: int, width_scale: float = 1.0) -> Image.Image:
    font = fonts.pillow_font(size, text=char)
    tile = Image.new("RGBA", (int(size * 1.6), int(size * 1.6)), (0, 0, 0, 0))
    # A thin stroke around each glyph gives the weight of engraved seal lettering.
    ImageDraw.Draw(tile).text(
        (tile.width / 2, tile.height / 2),
        char,
        font=font,
        fill=INK,
        anchor="mm",
        stroke_width=max(1, size // 28),
        stroke_fill=INK,
    )
    if width_scale != 1.0:
        # Seal lettering is condensed: narrow each glyph so long names fit the arc.
        tile = tile.resize(
            (max(1, int(tile.width * width_scale)), tile.height), Image.Resampling.LANCZOS
        )
    return tile


def _place_on_arc(
    canvas: Image.Image,
    fonts: FontSet,
    text: str,
    *,
    radius: float,
    span_degrees: float,
    size: int,
    bottom: bool,
    width_scale: float = 1.0,
) -> None:
    cx, cy = canvas.width / 2, canvas.height / 2
    n = len(text)
    step = span_degrees / max(n - 1, 1) if n > 1 else 0
    for i, char in enumerate(text):
        if bottom:
            # Left to right along the bottom: angles from the lower left to the lower right.
            angle = 90 + span_degrees / 2 - i * step
            rotation = -(angle - 90)  # tops point at the centre
        else:
            angle = -90 - span_degrees / 2 + i * step
            rotation = -(angle + 90)  # bottoms point at the centre
        rad = math.radians(angle)
        x, y = cx + radius * math.cos(rad), cy + radius * math.sin(rad)
        tile = _char_tile(fonts, char, size, width_scale).rotate(
            rotation, resample=Image.Resampling.BICUBIC, expand=True
        )
        canvas.alpha_composite(tile, (int(x - tile.width / 2), int(y - tile.height / 2)))


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, outer: float) -> None:
    inner = outer * 0.382  # the regular pentagram's ratio
    points = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        a = math.radians(-90 + k * 36)
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    draw.polygon(points, fill=INK)


def render_seal(design: SealDesign, fonts: FontSet, *, size: int = DEFAULT_SIZE) -> Image.Image:
    """The seal as an RGBA image of `size` x `size` pixels, transparent outside the ink."""
    big = size * SUPERSAMPLE
    canvas = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    c = big / 2
    ring = big * 0.032
    outer = big / 2 - big * 0.01
    draw.ellipse((c - outer, c - outer, c + outer, c + outer), outline=INK, width=int(ring))
    _star(draw, c, c, big * 0.155)

    name = design.organisation
    n = max(len(name), 1)
    span = min(240.0, 40.0 + 16.0 * n)
    arc_radius = outer - ring - big * 0.09
    char_size = int(min(big * 0.12, 2 * math.pi * arc_radius * span / 360 / n * 1.15))
    _place_on_arc(
        canvas,
        fonts,
        name,
        radius=arc_radius,
        span_degrees=span,
        size=char_size,
        bottom=False,
        width_scale=0.8 if n > 10 else 0.9,
    )
    if design.purpose:
        purpose_size = int(min(big * 0.1, big * 0.56 / max(len(design.purpose), 1)))
        font = fonts.pillow_font(purpose_size, text=design.purpose)
        draw.text(
            (c, c + big * 0.255),
            design.purpose,
            font=font,
            fill=INK,
            anchor="mm",
            stroke_width=max(1, purpose_size // 28),
            stroke_fill=INK,
        )
    if design.code:
        code_size = int(big * 0.045)
        _place_on_arc(
            canvas,
            fonts,
            design.code,
            radius=outer - ring - big * 0.045,
            span_degrees=min(100.0, 5.0 * len(design.code)),
            size=code_size,
            bottom=True,
        )
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()

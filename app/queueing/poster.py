"""The printable hall poster: the hall's name, its mini-program code, a plain QR of the same
printed code, and how to take a number.

One layout, drawn once with Pillow on an A4 page at 200 dpi; the PDF wraps that page so the
print shop and the screen get the same picture. Both codes carry the printed code's token:
WeChat's own scanner opens the mini-program from the mini-program code, and the plain QR is
for the scan button inside the mini-program (and for any other reader).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy.orm import Session

from app.halls.models import HallProfile
from app.organisation.models import Hall
from app.queueing import codes, wxacodes
from app.queueing.models import HallCode
from app.queueing.settings import QueueSettings
from seals.fonts import FontSet
from wechat.client import MiniProgramApi

DPI = 200
A4_MM = (210, 297)
PAGE = (round(A4_MM[0] / 25.4 * DPI), round(A4_MM[1] / 25.4 * DPI))  # 1654 x 2339
MARGIN = 120
RED = (196, 30, 37)
INK = (33, 33, 33)
GREY = (110, 110, 110)
CODE_SIDE = 560
_NO_LINE_START = frozenset("，。、；：！？）」』》”’")

STEPS = (
    "用微信扫描左侧小程序码；或打开「禺好办」小程序，点「扫码取号」扫描右侧二维码",
    "选择要办理的业务，领取排队号；已预约的市民在此签到",
    "留意微信叫号提醒和大厅屏幕，到号后前往对应窗口办理",
)


@dataclass(frozen=True)
class PosterContent:
    hall_name: str
    label: str | None  # where the poster hangs, e.g. "东门入口"
    address: str
    phone: str | None
    wxacode_png: bytes  # WeChat's mini-program code of the printed code
    qr_png: bytes  # the plain QR of the same token
    code_ref: str  # which printed code this is, for whoever replaces a torn poster


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int
) -> list[str]:
    """Break Chinese text into lines no wider than `width`; closing punctuation never starts
    a line (it stays at the end of the previous one, slightly over the width)."""
    lines: list[str] = []
    line = ""
    for char in text:
        too_wide = draw.textlength(line + char, font=font) > width
        if too_wide and line and char not in _NO_LINE_START:
            lines.append(line)
            line = char
        else:
            line += char
    if line:
        lines.append(line)
    return lines


def _centered(
    draw: ImageDraw.ImageDraw,
    y: int,
    text: str,
    font: ImageFont.FreeTypeFont,
    fill: tuple[int, int, int],
) -> int:
    """Draw `text` centred on the page, wrapped; return the y below it."""
    size = font.size
    for line in _wrap(draw, text, font, PAGE[0] - 2 * MARGIN):
        width = draw.textlength(line, font=font)
        draw.text(((PAGE[0] - width) / 2, y), line, font=font, fill=fill)
        y += round(size * 1.35)
    return y


def _code_image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    # Nearest neighbour keeps a QR's modules sharp; the round mini-program code is large enough.
    return image.resize((CODE_SIDE, CODE_SIDE), Image.Resampling.NEAREST)


def render_png(content: PosterContent, fonts: FontSet) -> bytes:
    """The poster as an A4 PNG at 200 dpi."""
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)

    def font(size: int, text: str) -> ImageFont.FreeTypeFont:
        found: ImageFont.FreeTypeFont = fonts.pillow_font(size, text=text)
        return found

    banner = "禺好办 · 扫码取号"
    draw.rectangle((0, 0, PAGE[0], 240), fill=RED)
    _centered(draw, 70, banner, font(92, banner), (255, 255, 255))

    y = _centered(draw, 330, content.hall_name, font(80, content.hall_name), INK)
    if content.label:
        y = _centered(draw, y + 10, content.label, font(48, content.label), GREY)

    top = max(y + 60, 640)
    gap = PAGE[0] - 2 * MARGIN - 2 * CODE_SIDE
    captions = ("微信扫一扫", "在「禺好办」内扫一扫")
    for index, (png, caption) in enumerate(
        zip((content.wxacode_png, content.qr_png), captions, strict=True)
    ):
        left = MARGIN + index * (CODE_SIDE + gap)
        page.paste(_code_image(png), (left, top))
        caption_font = font(44, caption)
        width = draw.textlength(caption, font=caption_font)
        x = left + (CODE_SIDE - width) / 2
        draw.text((x, top + CODE_SIDE + 24), caption, font=caption_font, fill=INK)

    y = top + CODE_SIDE + 140
    heading = "取号步骤"
    draw.text((MARGIN, y), heading, font=font(56, heading), fill=RED)
    y += 100
    for number, step in enumerate(STEPS, start=1):
        step_font = font(44, step)
        lines = _wrap(draw, step, step_font, PAGE[0] - 2 * MARGIN - 80)
        draw.text((MARGIN, y), f"{number}.", font=font(44, "0123456789."), fill=RED)
        for line in lines:
            draw.text((MARGIN + 80, y), line, font=step_font, fill=INK)
            y += 62
        y += 24

    footer = [content.address]
    if content.phone:
        footer.append(f"咨询电话：{content.phone}")
    y = PAGE[1] - 120 - 56 * len(footer)
    draw.line((MARGIN, y - 30, PAGE[0] - MARGIN, y - 30), fill=RED, width=4)
    for line in footer:
        if line:
            y = _centered(draw, y, line, font(36, line), GREY)
    _centered(draw, PAGE[1] - 100, content.code_ref, font(28, content.code_ref), GREY)

    buffer = io.BytesIO()
    page.save(buffer, format="PNG", dpi=(DPI, DPI), optimize=True)
    return buffer.getvalue()


def render_pdf(content: PosterContent, fonts: FontSet, *, printed_on: dt.date) -> bytes:
    """The same poster as a one-page A4 PDF."""
    png = render_png(content, fonts)
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creator("禺好办")
    pdf.set_title(f"{content.hall_name} 扫码取号海报")
    # A fixed date keeps the same poster byte-identical on every request of the day.
    pdf.set_creation_date(dt.datetime.combine(printed_on, dt.time(), tzinfo=dt.UTC))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.image(io.BytesIO(png), x=0, y=0, w=A4_MM[0], h=A4_MM[1])
    return bytes(pdf.output())


def poster_content(
    session: Session,
    wechat: MiniProgramApi,
    settings: QueueSettings,
    code: HallCode,
    *,
    page: str,
) -> PosterContent:
    """What the poster of a live printed code shows (asks WeChat for its code the first time)."""
    hall = session.get(Hall, code.hall_id)
    profile = session.get(HallProfile, code.hall_id)
    token = codes.printed_token(settings, code)
    return PosterContent(
        hall_name=hall.name if hall else "",
        label=code.label,
        address=profile.address if profile else "",
        phone=profile.phone if profile else None,
        wxacode_png=wxacodes.printed_wxacode(session, wechat, settings, code, page=page),
        qr_png=codes.qr_png(token),
        code_ref=f"大厅码 {code.hall_id}-{code.id}（{code.key_id}）",
    )

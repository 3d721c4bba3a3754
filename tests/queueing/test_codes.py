"""Hall codes and personal codes: compact, signed, refused when forged, expired, revoked or far."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from app.queueing import codes
from app.queueing.demo import HALL_LAT, HALL_LNG
from app.queueing.errors import (
    CodeExpired,
    CodeForged,
    CodeReplayed,
    CodeRevoked,
    CodeWrongHall,
    LocationRequired,
    LocationTooFar,
)
from app.queueing.settings import QueueSettings, parse_code_keys

NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
NEAR = {"latitude": HALL_LAT + 0.001, "longitude": HALL_LNG}  # ~110 m
FAR = {"latitude": HALL_LAT + 0.05, "longitude": HALL_LNG}  # ~5.5 km


def test_tokens_fit_a_mini_program_scene(session, create_queue_hall, queue_settings):
    qh = create_queue_hall()
    printed = codes.printed_token(
        queue_settings,
        codes.create_printed_code(session, queue_settings, qh.hall.id, label="正门", staff_id=None),
    )
    dynamic, _ = codes.dynamic_token(queue_settings, 10**6, NOW)
    allowed = set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$&'()*+,/:;=?@-._~"
    )
    for token in (printed, dynamic):
        assert len(token) <= 32 and set(token) <= allowed


def test_printed_code_needs_location_within_radius(session, create_queue_hall, queue_settings):
    qh = create_queue_hall()
    code = codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None)
    token = codes.printed_token(queue_settings, code)
    assert (
        codes.verify_hall_token(session, queue_settings, token, now=NOW, **NEAR).hall_id
        == qh.hall.id
    )
    with pytest.raises(LocationTooFar):
        codes.verify_hall_token(session, queue_settings, token, now=NOW, **FAR)
    with pytest.raises(LocationRequired):
        codes.verify_hall_token(session, queue_settings, token, now=NOW)
    with pytest.raises(CodeWrongHall):
        codes.verify_hall_token(
            session, queue_settings, token, now=NOW, hall_id=qh.hall.id + 1, **NEAR
        )


def test_revoked_and_forged_printed_codes_are_refused(session, create_queue_hall, queue_settings):
    qh = create_queue_hall()
    code = codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None)
    token = codes.printed_token(queue_settings, code)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(CodeForged):
        codes.verify_hall_token(session, queue_settings, forged, now=NOW, **NEAR)
    other_key = QueueSettings(code_keys=(("k0", b"someone else's key"),))
    with pytest.raises(CodeForged):
        codes.verify_hall_token(session, other_key, token, now=NOW, **NEAR)
    code.revoked_at = NOW
    with pytest.raises(CodeRevoked):
        codes.verify_hall_token(session, queue_settings, token, now=NOW, **NEAR)


@pytest.mark.parametrize(
    "junk", ["", "....", "P", "Pk0.zz.", "D.x.y.z", "Pk0.-1.AAAAAAAAAAAA", "x" * 70, "Ük0.1.2.3"]
)
def test_junk_is_forged(session, queue_settings, junk):
    with pytest.raises(CodeForged):
        codes.verify_hall_token(session, queue_settings, junk, now=NOW, **NEAR)


def test_dynamic_code_valid_for_its_period_and_the_next(session, queue_settings):
    token, next_at = codes.dynamic_token(queue_settings, 7, NOW)
    assert (next_at - NOW).total_seconds() <= 30
    assert codes.verify_dynamic(queue_settings, token, now=NOW) == 7
    assert codes.verify_dynamic(queue_settings, token, now=next_at + dt.timedelta(seconds=29)) == 7
    with pytest.raises(CodeExpired):
        codes.verify_dynamic(queue_settings, token, now=next_at + dt.timedelta(seconds=31))


def test_key_rotation_old_key_still_verifies(session, queue_settings):
    old = QueueSettings(code_keys=parse_code_keys("old:first-secret", "x"))
    token, _ = codes.dynamic_token(old, 3, NOW)
    rotated = QueueSettings(code_keys=parse_code_keys("new:second-secret,old:first-secret", "x"))
    assert codes.verify_dynamic(rotated, token, now=NOW) == 3
    assert codes.dynamic_token(rotated, 3, NOW)[0].startswith("Dnew.")
    retired = QueueSettings(code_keys=parse_code_keys("new:second-secret", "x"))
    with pytest.raises(CodeForged):
        codes.verify_dynamic(retired, token, now=NOW)


def test_personal_code_lives_60_seconds_and_each_action_uses_it_once(
    session, create_user, queue_settings
):
    user = create_user()
    token, expires_at = codes.personal_token(queue_settings, user.id, NOW)
    assert expires_at == NOW + dt.timedelta(seconds=60)
    scan = codes.verify_personal(queue_settings, token, now=NOW + dt.timedelta(seconds=59))
    assert scan.user_id == user.id
    codes.consume_personal(session, scan, action="take", staff_id=None, now=NOW)
    with pytest.raises(CodeReplayed):
        codes.consume_personal(session, scan, action="take", staff_id=None, now=NOW)
    codes.consume_personal(
        session, scan, action="checkin", staff_id=None, now=NOW
    )  # another action
    with pytest.raises(CodeExpired):
        codes.verify_personal(queue_settings, token, now=NOW + dt.timedelta(seconds=60))


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) is not installed")
def test_every_rendered_qr_decodes_back_to_its_token(
    tmp_path: Path, session, create_queue_hall, create_user, queue_settings
):
    qh = create_queue_hall()
    printed = codes.printed_token(
        queue_settings,
        codes.create_printed_code(session, queue_settings, qh.hall.id, label=None, staff_id=None),
    )
    dynamic, _ = codes.dynamic_token(queue_settings, qh.hall.id, NOW)
    personal, _ = codes.personal_token(queue_settings, create_user().id, NOW)
    for token in (printed, dynamic, personal):
        png = tmp_path / "code.png"
        png.write_bytes(codes.qr_png(token))
        assert _zbar(png) == token
        svg = tmp_path / "code.svg"
        svg.write_bytes(codes.qr_svg(token))
        assert _zbar(_rasterise(svg, tmp_path)) == token


def _zbar(path: Path) -> str:
    out = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _rasterise(svg: Path, tmp_path: Path) -> Path:
    """Draw the SVG's path (qrcode's SvgPathImage: M/H/V/z squares) onto a PNG with Pillow."""
    import re

    from PIL import Image, ImageDraw

    text = svg.read_text()
    width = float(re.search(r'width="([\d.]+)mm"', text).group(1))  # type: ignore[union-attr]
    path = re.search(r'<path d="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    scale = 10
    image = Image.new("L", (int(width * scale), int(width * scale)), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w, h in _squares(path):
        draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1], fill=0)
    out = tmp_path / "svg.png"
    image.save(out)
    return out


def _squares(path: str) -> list[tuple[float, float, float, float]]:
    import re

    squares = []
    for match in re.finditer(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H([\d.]+)z", path):
        x, y, x2, y2, _ = (float(v) for v in match.groups())
        squares.append((x, y, x2 - x, y2 - y))
    return squares

"""The printable hall poster: both codes scan to the printed code, in PNG and in PDF."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from PIL import Image

from app.identity.models import StaffRole
from app.queueing.demo import QueueHall
from app.queueing.poster import PAGE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def printed(
    client: FlaskClient,
    create_queue_hall: Callable[..., QueueHall],
    create_staff: Callable[..., Any],
    staff_headers: Callable[[Any], dict[str, str]],
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A hall's printed code through the API: (its poster URL without extension, the
    manager's headers, the code)."""
    qh = create_queue_hall()
    manager = staff_headers(create_staff(grants=[(StaffRole.HALL_MANAGER, qh.hall.id, None)]))
    code = client.post(
        f"/api/v1/halls/{qh.hall.id}/codes", json={"label": "东门入口"}, headers=manager
    )
    assert code.status_code == 201, code.json
    return f"/api/v1/halls/{qh.hall.id}/codes/{code.json['id']}/poster", manager, code.json


def _scan(path: Path) -> list[str]:
    found = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return sorted(line for line in found.splitlines() if line)


def test_poster_png_is_a4_at_200_dpi(
    client: FlaskClient, printed: tuple[str, dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    url, manager, _ = printed
    response = client.get(url + ".png", headers=manager)

    assert response.status_code == 200, response.json
    assert response.mimetype == "image/png" and response.data.startswith(PNG_SIGNATURE)
    path = tmp_path / "poster.png"
    path.write_bytes(response.data)
    with Image.open(path) as image:
        assert image.size == PAGE == (1654, 2339)
        assert round(image.info["dpi"][0]) == 200


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) is not installed")
def test_both_codes_on_the_poster_scan_to_the_printed_code(
    client: FlaskClient, printed: tuple[str, dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    url, manager, code = printed
    path = tmp_path / "poster.png"
    path.write_bytes(client.get(url + ".png", headers=manager).data)

    plain, mini_program = _scan(path)  # the emulator's wxacode is a URL, sorted after the token

    assert plain == code["token"]
    assert parse_qs(urlsplit(mini_program).query)["scene"] == [code["token"]]


@pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("zbarimg") is None,
    reason="poppler-utils and zbar-tools are needed",
)
def test_poster_pdf_is_one_a4_page_that_still_scans(
    client: FlaskClient, printed: tuple[str, dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    url, manager, code = printed
    response = client.get(url + ".pdf", headers=manager)

    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = tmp_path / "poster.pdf"
    pdf.write_bytes(response.data)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    fields = dict(line.split(":", 1) for line in info.stdout.splitlines() if ":" in line)
    assert fields["Pages"].strip() == "1"
    assert fields["Page size"].strip() == "595.28 x 841.89 pts (A4)"
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "page")], check=True)
    (page,) = tmp_path.glob("page*.png")
    assert code["token"] in _scan(page)


def test_poster_refuses_other_formats_revoked_codes_and_other_halls_managers(
    client: FlaskClient,
    printed: tuple[str, dict[str, str], dict[str, Any]],
    create_hall: Callable[..., Any],
    create_staff: Callable[..., Any],
    staff_headers: Callable[[Any], dict[str, str]],
) -> None:
    url, manager, _ = printed
    elsewhere = staff_headers(
        create_staff(grants=[(StaffRole.HALL_MANAGER, create_hall().id, None)])
    )

    assert client.get(url + ".gif", headers=manager).status_code == 404  # no such resource
    assert client.get(url + ".png", headers=elsewhere).status_code == 403
    assert client.get(url + ".png").status_code == 401
    revoke = url.removesuffix("/poster") + "/revoke"
    assert client.post(revoke, headers=manager).status_code == 200
    refused = client.get(url + ".pdf", headers=manager)
    assert refused.status_code == 422 and refused.json["code"] == "CODE_REVOKED"

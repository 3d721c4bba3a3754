"""Mini-program codes (wxacode) of printed hall codes, drawn by the WeChat emulator over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.wrappers import Request, Response

from app.identity.models import StaffRole
from app.queueing.demo import HALL_LAT, HALL_LNG, QueueHall
from app.queueing.wxacodes import WIDTH
from wechat.emulator import Emulator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HERE = {"latitude": HALL_LAT, "longitude": HALL_LNG}


@pytest.fixture
def asked(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The bodies of the getwxacodeunlimit calls the emulator answered during the test."""
    bodies: list[dict[str, Any]] = []
    answer = emulator._api_getwxacodeunlimit

    def recording(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))  # werkzeug keeps the body for `answer`
        return answer(request)

    monkeypatch.setattr(emulator, "_api_getwxacodeunlimit", recording)
    return bodies


@pytest.fixture
def printed(
    client: FlaskClient,
    create_queue_hall: Callable[..., QueueHall],
    create_staff: Callable[..., Any],
    staff_headers: Callable[[Any], dict[str, str]],
) -> tuple[QueueHall, dict[str, str], dict[str, Any]]:
    """A queue hall, its manager's headers and a printed code issued through the API."""
    qh = create_queue_hall()
    manager = staff_headers(create_staff(grants=[(StaffRole.HALL_MANAGER, qh.hall.id, None)]))
    code = client.post(f"/api/v1/halls/{qh.hall.id}/codes", json={"label": "正门"}, headers=manager)
    assert code.status_code == 201, code.json
    return qh, manager, code.json


def _url(qh: QueueHall, code: dict[str, Any]) -> str:
    return f"/api/v1/halls/{qh.hall.id}/codes/{code['id']}/wxacode.png"


def test_wxacode_carries_the_printed_token_as_scene_and_scans_into_the_queue(
    app: Flask,
    client: FlaskClient,
    printed: tuple[QueueHall, dict[str, str], dict[str, Any]],
    asked: list[dict[str, Any]],
    create_user: Callable[..., Any],
    citizen_headers: Callable[[Any], dict[str, str]],
) -> None:
    qh, manager, code = printed
    token = code["token"]

    image = client.get(_url(qh, code), headers=manager)

    assert image.status_code == 200, image.json
    assert image.mimetype == "image/png" and image.data.startswith(PNG_SIGNATURE)
    assert len(asked) == 1
    assert asked[0]["scene"] == token and len(token) <= 32
    assert asked[0]["page"] == app.config["QUEUE_WXACODE_PAGE"] == "pages/queue/scan"
    assert asked[0]["width"] == WIDTH and asked[0]["env_version"] == "release"
    # The mini-program hands its scene to the scan endpoint as the hall code.
    scan = client.post(
        "/api/v1/queue/scan",
        json={"code": asked[0]["scene"], **HERE},
        headers=citizen_headers(create_user()),
    )
    assert scan.status_code == 200, scan.json
    assert scan.json["hall_id"] == qh.hall.id


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) is not installed")
def test_wxacode_image_decodes_to_the_token_and_page(
    client: FlaskClient,
    printed: tuple[QueueHall, dict[str, str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    qh, manager, code = printed
    path = tmp_path / "wxacode.png"
    path.write_bytes(client.get(_url(qh, code), headers=manager).data)

    scanned = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()

    # The emulator draws what the real code would open: its page with its scene.
    query = parse_qs(urlsplit(scanned).query)
    assert query["scene"] == [code["token"]]
    assert query["page"] == ["pages/queue/scan"]


def test_wxacode_is_asked_of_wechat_once_and_then_served_from_storage(
    app: Flask,
    client: FlaskClient,
    printed: tuple[QueueHall, dict[str, str], dict[str, Any]],
    asked: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qh, manager, code = printed

    first = client.get(_url(qh, code), headers=manager)
    again = client.get(_url(qh, code), headers=manager)

    assert first.status_code == again.status_code == 200
    assert again.data == first.data
    assert len(asked) == 1
    # Another page is another code: drawn anew, not served from the old page's image.
    monkeypatch.setitem(app.config, "QUEUE_WXACODE_PAGE", "pages/hall/entry")
    other = client.get(_url(qh, code), headers=manager)
    assert other.status_code == 200 and other.data != first.data
    assert [body["page"] for body in asked] == ["pages/queue/scan", "pages/hall/entry"]


def test_revoked_code_is_refused_as_the_qr_route_refuses_it(
    client: FlaskClient,
    printed: tuple[QueueHall, dict[str, str], dict[str, Any]],
    asked: list[dict[str, Any]],
) -> None:
    qh, manager, code = printed
    client.post(f"/api/v1/halls/{qh.hall.id}/codes/{code['id']}/revoke", headers=manager)

    wxacode = client.get(_url(qh, code), headers=manager)
    qr = client.get(f"/api/v1/halls/{qh.hall.id}/codes/{code['id']}/qr.png", headers=manager)

    assert wxacode.status_code == qr.status_code == 422
    assert wxacode.json == qr.json and wxacode.json["code"] == "CODE_REVOKED"
    assert asked == []


def test_only_the_halls_managers_get_its_wxacode(
    client: FlaskClient,
    printed: tuple[QueueHall, dict[str, str], dict[str, Any]],
    create_hall: Callable[..., Any],
    create_staff: Callable[..., Any],
    staff_headers: Callable[[Any], dict[str, str]],
    create_user: Callable[..., Any],
    citizen_headers: Callable[[Any], dict[str, str]],
    asked: list[dict[str, Any]],
) -> None:
    qh, _, code = printed
    elsewhere = staff_headers(
        create_staff(grants=[(StaffRole.HALL_MANAGER, create_hall().id, None)])
    )
    clerk = staff_headers(create_staff(grants=[(StaffRole.WINDOW_CLERK, qh.hall.id, None)]))

    assert client.get(_url(qh, code), headers=elsewhere).status_code == 403
    assert client.get(_url(qh, code), headers=clerk).status_code == 403
    assert client.get(_url(qh, code), headers=citizen_headers(create_user())).status_code == 403
    assert client.get(_url(qh, code)).status_code == 401
    assert asked == []


@pytest.mark.parametrize(
    ("errcode", "times", "status", "code"),
    [
        pytest.param(41030, 1, 502, "WXACODE_REFUSED", id="page-not-released"),
        pytest.param(45009, 1, 503, "WXACODE_UNAVAILABLE", id="quota-used-up"),
        # The client replaces a refused access token once and asks again: refused both times.
        pytest.param(40001, 2, 503, "WXACODE_UNAVAILABLE", id="token-refused-twice"),
    ],
)
def test_wechat_refusals_become_json_errors_and_nothing_is_stored(
    client: FlaskClient,
    emulator: Emulator,
    printed: tuple[QueueHall, dict[str, str], dict[str, Any]],
    asked: list[dict[str, Any]],
    errcode: int,
    times: int,
    status: int,
    code: str,
) -> None:
    qh, manager, printed_code = printed
    emulator.inject_fault("getwxacodeunlimit", errcode=errcode, times=times)

    refused = client.get(_url(qh, printed_code), headers=manager)

    assert refused.status_code == status
    assert refused.mimetype == "application/json"
    assert refused.json["code"] == code and refused.json["details"] == {"errcode": errcode}
    assert refused.json["message"]
    # Nothing was stored: the next request asks WeChat again and gets the image.
    retried = client.get(_url(qh, printed_code), headers=manager)
    assert retried.status_code == 200 and retried.data.startswith(PNG_SIGNATURE)
    assert len(asked) == 1

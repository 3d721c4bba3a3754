"""Mini-program codes from getwxacodeunlimit."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from tests.support.wechat import DevApi
from wechat.client import WeChatClient
from wechat.errors import InvalidArgument, TransportError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_code_is_a_png_of_the_asked_width(wx_client: WeChatClient) -> None:
    image = wx_client.get_unlimited_code("t=A012", page="pages/queue/ticket", width=280)

    assert image.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(image)).size == (280, 280)


def test_code_scans_to_its_scene_and_page(wx_client: WeChatClient, tmp_path: Path) -> None:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.skip("zbarimg is not installed (apt-get install zbar-tools)")
    path = tmp_path / "code.png"
    path.write_bytes(wx_client.get_unlimited_code("hall=py01&t=A012", page="pages/queue/ticket"))

    scanned = subprocess.run(
        [zbarimg, "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()

    query = parse_qs(urlsplit(scanned).query)
    assert query["scene"] == ["hall=py01&t=A012"]
    assert query["page"] == ["pages/queue/ticket"]


@pytest.mark.parametrize(
    "scene",
    [
        pytest.param("x" * 33, id="too-long"),
        pytest.param("大厅=1", id="not-ascii"),
        pytest.param("a b", id="space"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_scene_is_refused_before_asking(
    wx_client: WeChatClient, dev: DevApi, scene: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        wx_client.get_unlimited_code(scene)

    assert raised.value.errcode == 40169
    assert dev.calls("getwxacodeunlimit") == 0


def test_scene_of_exactly_32_allowed_characters_is_fine(wx_client: WeChatClient) -> None:
    scene = "0aZ!#$&'()*+,/:;=?@-._~" + "b" * 9

    assert wx_client.get_unlimited_code(scene).startswith(PNG_SIGNATURE)


def test_wechat_refuses_a_long_scene(wx_client: WeChatClient, emu_url: str) -> None:
    answer = requests.post(
        f"{emu_url}/wxa/getwxacodeunlimit",
        params={"access_token": wx_client.access_token()},
        json={"scene": "x" * 33},
        timeout=5,
    )

    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["errcode"] == 40169


def test_checked_page_must_exist_in_the_published_app(wx_client: WeChatClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        wx_client.get_unlimited_code("t=1", page="pages/unpublished/index", check_path=True)
    assert raised.value.errcode == 41030

    unchecked = wx_client.get_unlimited_code("t=1", page="pages/unpublished/index")
    assert unchecked.startswith(PNG_SIGNATURE)


def test_slow_code_is_asked_again_after_a_timeout(
    make_client: Callable[..., WeChatClient], dev: DevApi, sleeps: list[float]
) -> None:
    # Drawing a code twice does no harm, so a timeout is retried.
    client = make_client(timeout=0.3)
    client.access_token()
    dev.fault("getwxacodeunlimit", delay=0.8)

    assert client.get_unlimited_code("t=A012").startswith(PNG_SIGNATURE)
    assert sleeps == [0.2]
    assert dev.calls("getwxacodeunlimit") == 2


def test_code_that_keeps_timing_out_raises_transport_error(
    make_client: Callable[..., WeChatClient], dev: DevApi, sleeps: list[float]
) -> None:
    client = make_client(timeout=0.2)
    client.access_token()
    dev.fault("getwxacodeunlimit", delay=0.5, times=3)

    with pytest.raises(TransportError):
        client.get_unlimited_code("t=A012")
    assert sleeps == [0.2, 0.4]

"""The emulator answers like WeChat: URLs, errcodes, token rules and its dev endpoints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.wechat import APPID, SECRET, DevApi, FakeClock
from wechat.client import WeChatClient


def stable_token(emu_url: str, **overrides: Any) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET} | overrides
    answer: dict[str, Any] = requests.post(
        f"{emu_url}/cgi-bin/stable_token", json=body, timeout=5
    ).json()
    return answer


def phone_answer(emu_url: str, token: str | None) -> dict[str, Any]:
    params = {} if token is None else {"access_token": token}
    answer: dict[str, Any] = requests.post(
        f"{emu_url}/wxa/business/getuserphonenumber",
        params=params,
        json={"code": "unknown"},
        timeout=5,
    ).json()
    return answer


def test_unknown_route_answers_json_404(emu_url: str) -> None:
    answer = requests.get(f"{emu_url}/cgi-bin/nothing-here", timeout=5)

    assert answer.status_code == 404
    assert answer.json()["errcode"] == -1


def test_wrong_method_answers_like_wechat(emu_url: str) -> None:
    assert requests.get(f"{emu_url}/cgi-bin/stable_token", timeout=5).json()["errcode"] == 43002
    assert requests.post(f"{emu_url}/sns/jscode2session", timeout=5).json()["errcode"] == 43001


def test_unreadable_bodies_are_refused(emu_url: str) -> None:
    url = f"{emu_url}/cgi-bin/stable_token"
    assert requests.post(url, data=b"", timeout=5).json()["errcode"] == 44002
    assert requests.post(url, data=b"{not json", timeout=5).json()["errcode"] == 47001


def test_stable_token_checks_the_credentials(emu_url: str) -> None:
    assert stable_token(emu_url, secret="wrong")["errcode"] == 40125
    assert stable_token(emu_url, appid="wx0000000000000000")["errcode"] == 40013
    assert stable_token(emu_url, grant_type="password")["errcode"] == 40002


def test_stable_token_stays_the_same_until_its_last_five_minutes(
    emu_url: str, fake_clock: FakeClock
) -> None:
    first = stable_token(emu_url)
    fake_clock.advance(100)
    again = stable_token(emu_url)
    assert again["access_token"] == first["access_token"]
    assert (first["expires_in"], again["expires_in"]) == (7200, 7100)

    fake_clock.advance(6801)
    renewed = stable_token(emu_url)

    assert renewed["access_token"] != first["access_token"]
    # Both stay usable while they overlap: the old one until its own expiry.
    assert phone_answer(emu_url, first["access_token"])["errcode"] == 40029
    fake_clock.advance(300)
    assert phone_answer(emu_url, first["access_token"])["errcode"] == 42001
    assert phone_answer(emu_url, renewed["access_token"])["errcode"] == 40029


def test_forced_refresh_invalidates_the_previous_token(emu_url: str, fake_clock: FakeClock) -> None:
    old = stable_token(emu_url)["access_token"]

    new = stable_token(emu_url, force_refresh=True)["access_token"]

    assert new != old
    assert phone_answer(emu_url, old)["errcode"] == 40001
    fake_clock.advance(10)
    # WeChat ignores a second forced refresh within 30 seconds.
    assert stable_token(emu_url, force_refresh=True)["access_token"] == new
    fake_clock.advance(30)
    assert stable_token(emu_url, force_refresh=True)["access_token"] != new


def test_forced_refreshes_are_limited_per_day(emu_url: str, fake_clock: FakeClock) -> None:
    for _ in range(20):
        assert "access_token" in stable_token(emu_url, force_refresh=True)
        fake_clock.advance(31)

    assert stable_token(emu_url, force_refresh=True)["errcode"] == 45009
    assert "access_token" in stable_token(emu_url)


def test_protected_endpoints_check_the_token(emu_url: str, fake_clock: FakeClock) -> None:
    token = stable_token(emu_url)["access_token"]

    assert phone_answer(emu_url, None)["errcode"] == 41001
    assert phone_answer(emu_url, "made-up-token")["errcode"] == 40001
    assert phone_answer(emu_url, token)["errcode"] == 40029
    fake_clock.advance(7200)
    assert phone_answer(emu_url, token)["errcode"] == 42001


def test_errmsg_carries_a_request_id(emu_url: str) -> None:
    assert " rid: " in phone_answer(emu_url, "made-up-token")["errmsg"]


def test_messages_can_be_listed_per_user(wx_client: WeChatClient, dev: DevApi) -> None:
    one, two = dev.login()["openid"], dev.login()["openid"]
    data = {"character_string1": "B007", "number2": "2", "thing3": "番禺区政务服务中心"}
    for openid in (one, two):
        dev.grant(openid, "queue_near")
        wx_client.send_subscribe_message(openid, "queue_near", data)

    assert [m["touser"] for m in dev.messages()] == [one, two]
    assert [m["touser"] for m in dev.messages(touser=two)] == [two]
    assert dev.messages(touser=two)[0]["msgid"] != dev.messages(touser=one)[0]["msgid"]


def test_reset_forgets_users_and_counts(wx_client: WeChatClient, dev: DevApi) -> None:
    code = dev.login()["code"]
    wx_client.access_token()

    dev.post("reset")

    assert dev.stats() == {
        "calls": {name: 0 for name in dev.stats()["calls"]},
        "tokens_issued": 0,
        "messages_sent": 0,
    }
    with pytest.raises(Exception, match="40029"):
        wx_client.code_to_session(code)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("subscriptions", {"openid": "oNobody", "template_id": "queue_called"}),
        ("subscriptions", {"template_id": "queue_called"}),
        ("faults", {"endpoint": "no_such_endpoint", "errcode": -1}),
        ("faults", {"endpoint": "stable_token"}),
        ("phone-code", {"phone": "call me"}),
        ("login", {"appid": "wx_unknown"}),
        ("encrypted-phone", {"openid": "oNobody", "phone": "13800138000"}),
    ],
)
def test_dev_endpoints_refuse_bad_input_with_400(
    emu_url: str, path: str, body: dict[str, Any]
) -> None:
    answer = requests.post(f"{emu_url}/_emulator/{path}", json=body, timeout=5)

    assert answer.status_code == 400
    assert answer.json()["error"]


@pytest.fixture
def standalone() -> Iterator[str]:
    """`python -m wechat.emulator` on a free port, stopped after the test."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wechat.emulator", "--port", "0", "--app", "wxstandalone:s3cret"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        yield line.split(" on ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_runs_standalone_from_the_command_line(standalone: str) -> None:
    login = requests.post(f"{standalone}/_emulator/login", json={}, timeout=5).json()
    answer = requests.get(
        f"{standalone}/sns/jscode2session",
        params={
            "appid": "wxstandalone",
            "secret": "s3cret",
            "js_code": login["code"],
            "grant_type": "authorization_code",
        },
        timeout=5,
    ).json()

    assert answer["openid"] == login["openid"]

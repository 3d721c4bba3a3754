"""Logging in: wx.login codes exchanged through jscode2session."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from tests.support.wechat import OTHER_APPID, DevApi, FakeClock
from wechat.client import WeChatClient
from wechat.errors import CodeUsed, InvalidCode, InvalidCredentials, TransportError


def test_login_code_gives_openid_session_key_and_unionid(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    login = dev.login(unionid="oUnionOfTheCitizen000000001")

    session = wx_client.code_to_session(login["code"])

    assert session.openid == login["openid"]
    assert len(base64.b64decode(session.session_key)) == 16
    assert session.unionid == "oUnionOfTheCitizen000000001"


def test_each_login_gets_a_new_session_key(wx_client: WeChatClient, dev: DevApi) -> None:
    first = dev.login()
    again = dev.login(openid=first["openid"])

    one = wx_client.code_to_session(first["code"])
    two = wx_client.code_to_session(again["code"])

    assert one.openid == two.openid
    assert one.session_key != two.session_key
    assert two.unionid is None


def test_a_code_works_only_once(wx_client: WeChatClient, dev: DevApi) -> None:
    code = dev.login()["code"]
    wx_client.code_to_session(code)

    with pytest.raises(CodeUsed) as raised:
        wx_client.code_to_session(code)
    assert raised.value.errcode == 40163


def test_unknown_code_is_invalid(wx_client: WeChatClient) -> None:
    with pytest.raises(InvalidCode) as raised:
        wx_client.code_to_session("0a3Cqb0w3e1GzZ2notarealcode")
    assert raised.value.errcode == 40029


def test_code_older_than_five_minutes_is_invalid(
    wx_client: WeChatClient, dev: DevApi, fake_clock: FakeClock
) -> None:
    code = dev.login()["code"]
    fake_clock.advance(301)

    with pytest.raises(InvalidCode):
        wx_client.code_to_session(code)


def test_code_issued_to_another_app_is_invalid(wx_client: WeChatClient, dev: DevApi) -> None:
    code = dev.login(appid=OTHER_APPID)["code"]

    with pytest.raises(InvalidCode):
        wx_client.code_to_session(code)


def test_wrong_secret_is_refused(make_client: Callable[..., WeChatClient], dev: DevApi) -> None:
    client = make_client(secret="not-the-secret")

    with pytest.raises(InvalidCredentials) as raised:
        client.code_to_session(dev.login()["code"])
    assert raised.value.errcode == 40125


def test_session_key_stays_out_of_reprs(wx_client: WeChatClient, dev: DevApi) -> None:
    session = wx_client.code_to_session(dev.login()["code"])

    assert session.session_key not in repr(session)
    assert "secret" not in repr(wx_client)


def test_login_is_not_repeated_after_a_read_timeout(
    make_client: Callable[..., WeChatClient], dev: DevApi, sleeps: list[float]
) -> None:
    # WeChat may have used the code before the answer was lost: asking again would only
    # earn "code been used", so the caller gets the timeout instead.
    dev.fault("jscode2session", delay=0.6)
    client = make_client(timeout=0.2)

    with pytest.raises(TransportError) as raised:
        client.code_to_session(dev.login()["code"])

    assert raised.value.maybe_processed
    assert sleeps == []
    assert dev.calls("jscode2session") == 1

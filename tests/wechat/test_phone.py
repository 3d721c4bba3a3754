"""Phone numbers: by getPhoneNumber code, and by the legacy encryptedData scheme."""

from __future__ import annotations

import base64
import os

import pytest

from tests.support.wechat import OTHER_APPID, DevApi
from wechat.client import WeChatClient
from wechat.errors import CodeUsed, InvalidCode, PhoneDataInvalid


def test_phone_code_gives_the_number(wx_client: WeChatClient, dev: DevApi) -> None:
    info = wx_client.get_phone_number(dev.phone_code("13800138000"))

    assert info.phone_number == "13800138000"
    assert info.pure_phone_number == "13800138000"
    assert info.country_code == "86"


def test_number_outside_the_mainland_carries_its_country_code(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    info = wx_client.get_phone_number(dev.phone_code("91234567", country_code="852"))

    assert info.phone_number == "+85291234567"
    assert info.pure_phone_number == "91234567"
    assert info.country_code == "852"


def test_phone_code_works_once(wx_client: WeChatClient, dev: DevApi) -> None:
    code = dev.phone_code("13800138000")
    wx_client.get_phone_number(code)

    with pytest.raises(CodeUsed):
        wx_client.get_phone_number(code)


def test_unknown_phone_code_is_invalid(wx_client: WeChatClient) -> None:
    with pytest.raises(InvalidCode):
        wx_client.get_phone_number(
            "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"
        )


def test_phone_code_of_another_app_is_invalid(wx_client: WeChatClient, dev: DevApi) -> None:
    with pytest.raises(InvalidCode):
        wx_client.get_phone_number(dev.phone_code("13800138000", appid=OTHER_APPID))


def test_phone_number_stays_out_of_reprs(wx_client: WeChatClient, dev: DevApi) -> None:
    info = wx_client.get_phone_number(dev.phone_code("13800138000"))

    assert "13800138000" not in repr(info)


def test_legacy_encrypted_phone_is_decrypted_with_the_session_key(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    session = wx_client.code_to_session(dev.login()["code"])
    sealed = dev.post("encrypted-phone", openid=session.openid, phone="13900139000")

    info = wx_client.decrypt_phone_data(session.session_key, sealed["encryptedData"], sealed["iv"])

    assert info.pure_phone_number == "13900139000"
    assert info.country_code == "86"


def test_legacy_data_sealed_after_a_new_login_fails_with_the_old_key(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    old = wx_client.code_to_session(dev.login()["code"])
    wx_client.code_to_session(dev.login(openid=old.openid)["code"])
    sealed = dev.post("encrypted-phone", openid=old.openid, phone="13900139000")

    with pytest.raises(PhoneDataInvalid):
        wx_client.decrypt_phone_data(old.session_key, sealed["encryptedData"], sealed["iv"])


def test_legacy_data_watermarked_for_another_app_is_refused(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    session = wx_client.code_to_session(dev.login()["code"])
    sealed = dev.post(
        "encrypted-phone", openid=session.openid, phone="13900139000", watermark_appid=OTHER_APPID
    )

    with pytest.raises(PhoneDataInvalid, match="watermark"):
        wx_client.decrypt_phone_data(session.session_key, sealed["encryptedData"], sealed["iv"])


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


KEY = _b64(os.urandom(16))
IV = _b64(os.urandom(16))


@pytest.mark.parametrize(
    ("session_key", "encrypted_data", "iv"),
    [
        pytest.param(KEY, "not base64 at all!", IV, id="data-not-base64"),
        pytest.param(KEY, _b64(os.urandom(20)), IV, id="data-not-whole-blocks"),
        pytest.param(KEY, _b64(os.urandom(64)), IV, id="random-blocks"),
        pytest.param(KEY, "", IV, id="empty-data"),
        pytest.param(_b64(os.urandom(8)), _b64(os.urandom(32)), IV, id="short-key"),
        pytest.param(KEY, _b64(os.urandom(32)), _b64(os.urandom(12)), id="short-iv"),
        pytest.param("%%%", _b64(os.urandom(32)), IV, id="key-not-base64"),
    ],
)
def test_garbage_legacy_data_is_refused(
    wx_client: WeChatClient, session_key: str, encrypted_data: str, iv: str
) -> None:
    with pytest.raises(PhoneDataInvalid):
        wx_client.decrypt_phone_data(session_key, encrypted_data, iv)

"""Message-push server verification."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from tests.support.wechat import DevApi
from wechat.push import check_push_signature, push_signature


def test_signature_made_by_wechat_is_accepted(dev: DevApi) -> None:
    signed = dev.post("push-signature", token="yuhaoban-push-token")

    assert check_push_signature(
        "yuhaoban-push-token", signed["signature"], signed["timestamp"], signed["nonce"]
    )


def test_signature_is_sha1_of_the_sorted_parts() -> None:
    expected = hashlib.sha1(b"1372623149" + b"1409659813" + b"token").hexdigest()

    assert push_signature("token", "1409659813", "1372623149") == expected


def test_other_token_or_changed_fields_are_refused(dev: DevApi) -> None:
    signed = dev.post("push-signature", token="yuhaoban-push-token")
    signature, timestamp, nonce = signed["signature"], signed["timestamp"], signed["nonce"]

    assert not check_push_signature("another-token", signature, timestamp, nonce)
    assert not check_push_signature("yuhaoban-push-token", signature, timestamp + "1", nonce)
    assert not check_push_signature("yuhaoban-push-token", signature, timestamp, nonce + "1")
    assert not check_push_signature("yuhaoban-push-token", signature[:-1], timestamp, nonce)


@given(token=st.text(), signature=st.text(), timestamp=st.text(), nonce=st.text())
def test_any_input_gets_an_answer_not_a_crash(
    token: str, signature: str, timestamp: str, nonce: str
) -> None:
    assert check_push_signature(token, signature, timestamp, nonce) in (True, False)

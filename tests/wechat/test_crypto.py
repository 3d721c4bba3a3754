"""The legacy open-data cipher on its own."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wechat.crypto import DecryptError, decrypt_user_data, encrypt_user_data

KEY = base64.b64encode(os.urandom(16)).decode("ascii")

json_objects = st.dictionaries(
    st.text(max_size=10),
    st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none()),
    max_size=6,
)


@given(json_objects)
def test_what_is_encrypted_decrypts_to_the_same_object(payload: dict[str, object]) -> None:
    encrypted, iv = encrypt_user_data(KEY, payload)

    assert decrypt_user_data(KEY, encrypted, iv) == payload


def test_another_key_does_not_decrypt() -> None:
    encrypted, iv = encrypt_user_data(KEY, {"phoneNumber": "13800138000"})
    other = base64.b64encode(os.urandom(16)).decode("ascii")

    with pytest.raises(DecryptError):
        decrypt_user_data(other, encrypted, iv)


def test_tampered_ciphertext_is_refused() -> None:
    encrypted, iv = encrypt_user_data(KEY, {"phoneNumber": "13800138000"})
    raw = bytearray(base64.b64decode(encrypted))
    raw[-1] ^= 0xFF  # the last block now decrypts to noise with broken padding
    tampered = base64.b64encode(bytes(raw)).decode("ascii")

    with pytest.raises(DecryptError):
        decrypt_user_data(KEY, tampered, iv)

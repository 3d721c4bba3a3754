"""The legacy open-data scheme: AES-128-CBC with the user's session_key, PKCS#7 padded.

Mini-program pages used to hand the server `encryptedData` and `iv` (both base64) that
only the holder of the user's `session_key` can read. The emulator encrypts with the same
rules so the client's decrypt path runs end to end in tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK_BITS = 128


class DecryptError(ValueError):
    """The ciphertext, key or iv is malformed, or the plaintext is not a JSON object."""


def _b64(value: str, *, what: str, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError(f"{what} is not valid base64") from exc
    if length is not None and len(raw) != length:
        raise DecryptError(f"{what} must decode to {length} bytes")
    return raw


def decrypt_user_data(session_key: str, encrypted_data: str, iv: str) -> dict[str, Any]:
    """Decrypt legacy `encryptedData` into its JSON object; raise DecryptError on any fault."""
    key = _b64(session_key, what="session_key", length=16)
    nonce = _b64(iv, what="iv", length=16)
    ciphertext = _b64(encrypted_data, what="encryptedData")
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptError("encryptedData is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(nonce)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK_BITS).unpadder()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
        payload = json.loads(plaintext.decode("utf-8"))
    except ValueError as exc:
        # A wrong key yields bad padding or garbage bytes; both land here.
        raise DecryptError("encryptedData does not decrypt to JSON") from exc
    if not isinstance(payload, dict):
        raise DecryptError("decrypted data is not a JSON object")
    return payload


def encrypt_user_data(
    session_key: str, payload: dict[str, Any], *, iv: bytes | None = None
) -> tuple[str, str]:
    """Encrypt a JSON object as WeChat does; return base64 `(encryptedData, iv)`."""
    key = _b64(session_key, what="session_key", length=16)
    nonce = os.urandom(16) if iv is None else iv
    padder = padding.PKCS7(_BLOCK_BITS).padder()
    plaintext = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(nonce)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(ciphertext).decode("ascii"), base64.b64encode(nonce).decode("ascii")

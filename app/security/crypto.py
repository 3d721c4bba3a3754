"""Encryption of personal data at rest, and keyed hashes to find it again.

Values are sealed with AES-256-GCM under a key chosen by id; the id travels in the ciphertext
(`v1:<kid>:<nonce>:<ciphertext>`, base64url) so keys can rotate: new values use the first key,
old ones still open with theirs. The column name is bound as associated data so a value copied
into another column will not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from seals.keyspec import parse_key_list


class CryptoError(RuntimeError):
    """A value could not be decrypted (unknown key id, tampered, or not ours)."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    """Seals and opens personal-data fields."""

    def __init__(self, keys: dict[str, bytes], index_key: bytes) -> None:
        self._keys = keys
        self._current_kid = next(iter(keys))
        self._index_key = index_key

    @classmethod
    def from_config(cls, data_keys: str, index_key: str) -> FieldCipher:
        keys = parse_key_list(data_keys, noun="data key", none_message="no data keys configured")
        return cls(keys, index_key.encode())

    @property
    def current_key_id(self) -> str:
        return self._current_kid

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal `plaintext` for the column named by `context`."""
        nonce = os.urandom(12)
        sealed = AESGCM(self._keys[self._current_kid]).encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        return f"v1:{self._current_kid}:{_b64e(nonce)}:{_b64e(sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Open a value sealed by `encrypt` for the same `context`."""
        try:
            version, kid, nonce, sealed = token.split(":")
            if version != "v1":
                raise ValueError(version)
            key = self._keys[kid]
            return AESGCM(key).decrypt(_b64d(nonce), _b64d(sealed), context.encode()).decode()
        except (ValueError, KeyError, InvalidTag) as exc:
            raise CryptoError(f"cannot decrypt {context}") from exc

    @staticmethod
    def key_id_of(token: str) -> str:
        """The id of the key that sealed `token` (for rotation reports)."""
        return token.split(":")[1]

    def blind_index(self, value: str, *, context: str) -> str:
        """A keyed hash of `value`: equal values match, the value itself cannot be recovered."""
        digest = hmac.new(self._index_key, f"{context}\x00{value}".encode(), hashlib.sha256)
        return digest.hexdigest()


def hash_token(token: str) -> str:
    """SHA-256 of a high-entropy opaque token (refresh tokens), for storage and lookup."""
    return hashlib.sha256(token.encode()).hexdigest()

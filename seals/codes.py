"""Verification codes: an opaque document id and a truncated keyed tag, short enough for a QR.

`<doc id>-<key id><tag>`: the id is 10 random base32 characters (50 bits); the tag is the
HMAC-SHA256 of the id under the key named by its one-character id, truncated to 8 base32
characters (40 bits). The key id lets keys rotate; the tag makes a guessed id worthless without
the key, and the public endpoints check it before touching the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
DOC_ID_LENGTH = 10
TAG_LENGTH = 8
CODE_PATTERN = re.compile(rf"([A-Z2-7]{{{DOC_ID_LENGTH}}})-([A-Za-z0-9])([A-Z2-7]{{{TAG_LENGTH}}})")


def parse_code_keys(spec: str) -> dict[str, bytes]:
    """`k:secret,j:secret` (one-character ids); the first signs new codes."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, _, secret = item.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9]", kid) or len(secret) < 16:
            raise ValueError("seal code keys look like 'k:<at least 16 characters>'")
        keys[kid] = secret.encode()
    if not keys:
        raise ValueError("no seal code key configured")
    return keys


def new_document_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(DOC_ID_LENGTH))


def _tag(key: bytes, doc_id: str) -> str:
    digest = hmac.new(key, doc_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:TAG_LENGTH]


class CodeSigner:
    """Makes and checks verification codes."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = keys
        self._current = next(iter(keys))

    @classmethod
    def from_spec(cls, spec: str) -> CodeSigner:
        return cls(parse_code_keys(spec))

    def code_for(self, doc_id: str) -> str:
        return f"{doc_id}-{self._current}{_tag(self._keys[self._current], doc_id)}"

    def document_id(self, code: str) -> str | None:
        """The document id of a genuine code; None for a forged or malformed one."""
        match = CODE_PATTERN.fullmatch(code.strip())
        if match is None:
            return None
        doc_id, kid, tag = match.groups()
        key = self._keys.get(kid)
        if key is None or not hmac.compare_digest(_tag(key, doc_id), tag):
            return None
        return doc_id

"""Key lists as settings write them: `kid:base64(32 bytes),kid2:...`, first key current.

One parser for every such setting (the seal master keys here, the personal-data keys in
`app.security.crypto`); `noun` names the setting in error messages.
"""

from __future__ import annotations

import base64
import re

KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
KEY_BYTES = 32


def parse_key_list(spec: str, *, noun: str, none_message: str) -> dict[str, bytes]:
    """An ordered {kid: 32-byte key} from `spec`; ValueError naming `noun` if malformed."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, _, encoded = item.partition(":")
        if not KEY_ID.fullmatch(kid):
            raise ValueError(f"bad {noun} id {kid!r}")
        key = base64.b64decode(encoded)
        if len(key) != KEY_BYTES:
            raise ValueError(f"{noun} {kid!r} must be {KEY_BYTES} bytes, got {len(key)}")
        keys[kid] = key
    if not keys:
        raise ValueError(none_message)
    return keys

"""Helpers of the audit tests."""

from __future__ import annotations

import base64


def key_spec(*key_ids: str) -> str:
    """A key list setting whose key for each id is fixed bytes derived from the id."""
    return ",".join(
        f"{kid}:{base64.b64encode(kid.encode().ljust(32, b'.')).decode()}" for kid in key_ids
    )

"""Fingerprints of JSON-shaped data: the same content gives the same digest whatever the key
order, so a retried request, a republished matter or a re-signed form compare by content."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_sha256(value: Any) -> str:
    """SHA-256 (hex) of `value` as canonical JSON: sorted keys, no spaces, UTF-8 as is."""
    canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

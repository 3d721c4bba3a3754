"""How an audit entry is linked into the chain: a keyed MAC over its predecessor's link and its
own fields.

- `hmac-sha256`, every entry sealed since migration 0010: HMAC-SHA256 under a key of
  `AUDIT_MAC_KEYS` (the environment, never the database), whose id is stored on the entry so
  keys can rotate. Someone who can write to the database but lacks the key cannot recompute
  the links after an edit.
- `sha256`, entries sealed before: the plain SHA-256 chain, still verified as it was. They
  are not re-chained (that would bless whatever the table held at migration time); an edit to
  one of them and a recomputation of the plain links after it still breaks the first keyed
  link, which covers the last plain one. Verification refuses a plain link after a keyed one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from seals.keyspec import parse_key_list

SHA256 = "sha256"
HMAC_SHA256 = "hmac-sha256"


def canonical_body(
    *,
    seq: int,
    occurred_at: dt.datetime,
    action: str,
    actor_kind: str,
    actor_id: int | None,
    subject_type: str | None,
    subject_id: str | None,
    details: dict[str, Any],
    request_id: str | None,
) -> str:
    """The entry's fields as canonical JSON: the same bytes on every backend and run."""
    return json.dumps(
        {
            "seq": seq,
            "at": occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "action": action,
            "actor": [actor_kind, actor_id],
            "subject": [subject_type, subject_id],
            "details": details,
            "request_id": request_id,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def entry_hash(prev_hash: str, **fields: Any) -> str:
    """The legacy `sha256` link: SHA-256 over the previous link and the canonical body."""
    return hashlib.sha256((prev_hash + canonical_body(**fields)).encode()).hexdigest()


def entry_mac(key: bytes, key_id: str, prev_hash: str, **fields: Any) -> str:
    """The `hmac-sha256` link; the algorithm and key id are bound into it as well."""
    message = f"{HMAC_SHA256}\x00{key_id}\x00{prev_hash}{canonical_body(**fields)}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


class MacKeys:
    """The link keys by id; the first one links new entries, all of them verify."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = dict(keys)
        self.current_id = next(iter(self._keys))

    @classmethod
    def from_spec(cls, spec: str) -> MacKeys:
        """Keys from `AUDIT_MAC_KEYS`: `kid:base64(32 bytes),...`."""
        return cls(
            parse_key_list(spec, noun="audit MAC key", none_message="no audit MAC keys configured")
        )

    @property
    def current(self) -> bytes:
        return self._keys[self.current_id]

    def get(self, key_id: str | None) -> bytes | None:
        """The key named `key_id`, or None if it is not configured (any more)."""
        return self._keys.get(key_id) if key_id is not None else None

"""The queue's settings, read once from the app config and passed to services explicitly."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueSettings:
    code_keys: tuple[tuple[str, bytes], ...]  # (kid, key); the first signs
    radius_meters: int = 500
    dynamic_period_seconds: int = 30
    personal_code_ttl_seconds: int = 60
    green_channel_age: int = 60
    max_recalls: int = 2
    late_return_places: int = 3
    near_notice_ahead: int = 3

    @property
    def signing_key(self) -> tuple[str, bytes]:
        return self.code_keys[0]

    def key(self, kid: str) -> bytes | None:
        return dict(self.code_keys).get(kid)


def parse_code_keys(raw: str, secret_key: str) -> tuple[tuple[str, bytes], ...]:
    """`kid:secret,...`; empty derives one key `k0` from SECRET_KEY (development)."""
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kid, _, secret = item.partition(":")
        if not (kid.isalnum() and kid.isascii() and 1 <= len(kid) <= 4) or not secret:
            raise ValueError("QUEUE_CODE_KEYS: each entry is kid:secret, kid of 1-4 letters/digits")
        keys.append((kid, secret.encode()))
    if not keys:
        derived = hmac.new(secret_key.encode(), b"yuhaoban/queue-codes", hashlib.sha256).digest()
        keys.append(("k0", derived))
    return tuple(keys)


def from_config(config: Mapping[str, Any]) -> QueueSettings:
    """The queue settings of an app config."""
    return QueueSettings(
        code_keys=parse_code_keys(config["QUEUE_CODE_KEYS"], config["SECRET_KEY"]),
        radius_meters=int(config["QUEUE_CODE_RADIUS_METERS"]),
        dynamic_period_seconds=int(config["QUEUE_DYNAMIC_CODE_PERIOD_SECONDS"]),
        personal_code_ttl_seconds=int(config["QUEUE_PERSONAL_CODE_TTL_SECONDS"]),
        green_channel_age=int(config["QUEUE_GREEN_CHANNEL_AGE"]),
        max_recalls=int(config["QUEUE_MAX_RECALLS"]),
        late_return_places=int(config["QUEUE_LATE_RETURN_PLACES"]),
        near_notice_ahead=int(config["QUEUE_NEAR_NOTICE_AHEAD"]),
    )

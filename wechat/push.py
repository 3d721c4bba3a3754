"""Signature check for WeChat's message-push server verification."""

from __future__ import annotations

import hashlib
import hmac


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """Compute WeChat's push signature: sha1 hex of token, timestamp and nonce sorted and joined."""
    joined = "".join(sorted((token, timestamp, nonce)))
    # SHA-1 is WeChat's choice for this protocol, not ours.
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324  # nosec B324  # WeChat's push signature protocol fixes SHA-1


def check_push_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """Tell whether a push request was signed with our token."""
    expected = push_signature(token, timestamp, nonce)
    # Compare bytes: compare_digest refuses non-ASCII str, and the signature is attacker input.
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))

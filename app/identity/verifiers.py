"""Who confirms that a name and an ID number belong to the person holding the phone.

Production needs an identity-verification service (the Ministry of Public Security's CTID, or a
cloud face-verification product). Those match a live face, captured by the mini-program's own
SDK flow, against the ID photo: they do not fit a server-side `verify(name, id_number)` call and
need contracted credentials, so no such adapter is written here. The `IdentityVerifier`
Protocol is the seam where one plugs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VerificationResult:
    passed: bool
    method: str  # stored in users.realname_method, e.g. "checksum", "face"
    reason: str | None = None  # why it did not pass; never personal data


class IdentityVerifier(Protocol):
    def verify(self, name: str, id_number: str) -> VerificationResult:
        """Confirm that `name` and `id_number` are one real person's."""
        ...


class ChecksumVerifier:
    """Development and tests: accepts any well-formed identity (format checks run before)."""

    method = "checksum"

    def verify(self, name: str, id_number: str) -> VerificationResult:
        """Pass: `verify_real_name` has already checked the check digit and birth date."""
        return VerificationResult(passed=True, method=self.method)

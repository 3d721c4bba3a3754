"""The real-name service (姓名 + 身份证号 belong together) and face verification results.

The face check itself runs in the mini-program (the face SDK films the person and compares
them with the ID photo); it hands the page a one-time verify token, which the server redeems
here for the result. Only the server's redemption is trusted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from verification.errors import UnexpectedAnswer
from verification.http import SignedJsonService, raise_for_400, require_field

SERVICE = "identity service"
NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)  # checked_at of a check that did not happen


@dataclass(frozen=True)
class IdentityCheck:
    """The service's answer for a name and an ID number."""

    passed: bool
    method: str  # stored as users.realname_method
    reason: str | None = None  # why not; never personal data


@dataclass(frozen=True)
class FaceCheck:
    """The result of a face verification the mini-program's SDK ran."""

    passed: bool
    name: str = field(default="", repr=False)
    id_number: str = field(default="", repr=False)
    checked_at: dt.datetime = NEVER
    reason: str | None = None


class IdentityVerifier(Protocol):
    """A real-name check; HttpIdentityService implements it."""

    def verify(self, name: str, id_number: str) -> IdentityCheck:
        """Confirm that `name` and `id_number` are one real person's."""
        ...


class FaceVerifier(Protocol):
    """Redeems face verification tokens; HttpIdentityService implements it."""

    def face_result(self, verify_token: str) -> FaceCheck:
        """Redeem a one-time verify token for the face verification's result."""
        ...


class HttpIdentityService(SignedJsonService):
    """The real-name and face verification service over HTTPS."""

    method = "realname_service"

    def verify(self, name: str, id_number: str) -> IdentityCheck:
        """Ask the service whether the name and the ID number are one person's."""
        status, answer = self._client.post(
            "/v1/identity/verify", {"name": name, "id_number": id_number}, service=SERVICE
        )
        raise_for_400(status, answer, service=SERVICE)
        result = require_field(answer, "result", str, service=SERVICE)
        if result not in ("match", "mismatch", "not_found"):
            raise UnexpectedAnswer(f"{SERVICE}: result {result!r}")
        return IdentityCheck(
            passed=result == "match",
            method=self.method,
            reason=None if result == "match" else result,
        )

    def face_result(self, verify_token: str) -> FaceCheck:
        """Redeem a token; an unknown, expired or used one is a failed check, not an error."""
        status, answer = self._client.post(
            "/v1/face/result", {"verify_token": verify_token}, service=SERVICE
        )
        if status == 400 and answer.get("error") == "token_invalid":
            return FaceCheck(passed=False, reason="token_invalid")
        raise_for_400(status, answer, service=SERVICE)
        passed = require_field(answer, "passed", bool, service=SERVICE)
        try:
            checked_at = dt.datetime.fromisoformat(
                require_field(answer, "checked_at", str, service=SERVICE)
            )
        except ValueError as exc:
            raise UnexpectedAnswer(f"{SERVICE}: checked_at") from exc
        if checked_at.tzinfo is None:
            raise UnexpectedAnswer(f"{SERVICE}: checked_at without offset")
        return FaceCheck(
            passed=passed,
            name=str(answer.get("name") or ""),
            id_number=str(answer.get("id_number") or ""),
            checked_at=checked_at.astimezone(dt.UTC),
            reason=None if passed else str(answer.get("reason") or "face_mismatch"),
        )

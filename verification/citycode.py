"""The city's personal code (红棉码): who is showing it, as the city's code service says.

A Guangzhou resident shows the 红棉码 from the city's own app; the code changes every minute
and names the person only through the city service. A window terminal scans it and the
district asks the service to resolve it: a live code answers with its serial (single use per
action on our side), the holder's real name and ID number, and when it stops being valid.
The name and the ID number are personal data: never logged, never kept beyond matching them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from verification.errors import UnexpectedAnswer, VerificationError
from verification.http import SignedJsonService, raise_for_400, require_field

SERVICE = "city code service"
MAX_CODE_LENGTH = 256  # longer is no 红棉码: refused before any call


class CityCodeRejected(VerificationError):
    """The service does not accept the code: unknown, forged, expired or revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{SERVICE}: {reason}")
        self.reason = reason  # code_invalid | code_expired


@dataclass(frozen=True)
class CityCodeHolder:
    """The person a live 红棉码 belongs to."""

    serial: str  # the code's own id: one use per action
    expires_at: dt.datetime
    name: str = field(repr=False)
    id_number: str = field(repr=False)


class CityCodeResolver(Protocol):
    """Resolves a scanned 红棉码; HttpCityCodeService implements it."""

    def resolve(self, code: str) -> CityCodeHolder:
        """The holder of a live code; CityCodeRejected when the service refuses it."""
        ...


class HttpCityCodeService(SignedJsonService):
    """The city code service over HTTPS (signed JSON, see verification/http.py)."""

    def resolve(self, code: str) -> CityCodeHolder:
        """Ask the service whose code this is."""
        if not code or len(code) > MAX_CODE_LENGTH:
            raise CityCodeRejected("code_invalid")
        status, answer = self._client.post("/v1/citycode/resolve", {"code": code}, service=SERVICE)
        if status == 400 and answer.get("error") in ("code_invalid", "code_expired"):
            raise CityCodeRejected(str(answer["error"]))
        raise_for_400(status, answer, service=SERVICE)
        try:
            expires_at = dt.datetime.fromisoformat(
                require_field(answer, "expires_at", str, service=SERVICE)
            )
        except ValueError as exc:
            raise UnexpectedAnswer(f"{SERVICE}: expires_at") from exc
        if expires_at.tzinfo is None:
            raise UnexpectedAnswer(f"{SERVICE}: expires_at without offset")
        return CityCodeHolder(
            serial=require_field(answer, "serial", str, service=SERVICE),
            expires_at=expires_at.astimezone(dt.UTC),
            name=require_field(answer, "name", str, service=SERVICE),
            id_number=require_field(answer, "id_number", str, service=SERVICE).upper(),
        )

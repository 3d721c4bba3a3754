"""The one way both clients call a service: signed JSON over HTTPS with a timeout.

Each request carries `X-App-Id`, `X-Timestamp`, `X-Nonce` and `X-Signature`, the hex
HMAC-SHA256 under the app secret of timestamp, nonce, method, path and body, one per line; the
service refuses a signature it cannot reproduce or a timestamp more than five minutes off.
Bodies carry names, ID numbers and account numbers: nothing of a body is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from verification.errors import (
    CredentialsRejected,
    RequestInvalid,
    ServiceUnavailable,
    UnexpectedAnswer,
)

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW_SECONDS = 300


def signature(
    secret: str, *, timestamp: str, nonce: str, method: str, path: str, body: bytes
) -> str:
    """The hex HMAC-SHA256 both sides compute over one request."""
    message = b"\n".join(
        [timestamp.encode(), nonce.encode(), method.upper().encode(), path.encode(), body]
    )
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class SignedJsonClient:
    """POSTs JSON to one service and returns its JSON answer (400 answers included, for the
    callers whose contract gives 400 a meaning)."""

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        app_id: str,
        secret: str,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._app_id = app_id
        self._secret = secret
        self._timeout = timeout
        self._clock = clock

    def post(
        self, path: str, payload: dict[str, Any], *, service: str
    ) -> tuple[int, dict[str, Any]]:
        """Send one signed call; return the status (200 or 400) and the JSON object answered."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self._clock()))
        nonce = secrets.token_hex(12)
        full_path = urlsplit(self._base_url).path + path
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-App-Id": self._app_id,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": signature(
                self._secret,
                timestamp=timestamp,
                nonce=nonce,
                method="POST",
                path=full_path,
                body=body,
            ),
        }
        started = time.perf_counter()
        try:
            response = self._session.post(
                self._base_url + path, data=body, headers=headers, timeout=self._timeout
            )
        except requests.Timeout as exc:
            log.warning("%s timed out", service, extra={"endpoint": path})
            raise ServiceUnavailable(f"{service}: timeout") from exc
        except requests.RequestException as exc:
            log.warning("%s unreachable", service, extra={"endpoint": path})
            raise ServiceUnavailable(f"{service}: {type(exc).__name__}") from exc
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "%s answered",
            service,
            extra={"endpoint": path, "status": response.status_code, "ms": elapsed_ms},
        )
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{service}: HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise CredentialsRejected(f"{service}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise UnexpectedAnswer(f"{service}: not JSON") from exc
        if response.status_code not in (200, 400) or not isinstance(answer, dict):
            raise UnexpectedAnswer(f"{service}: HTTP {response.status_code}")
        return response.status_code, answer


def require_field(answer: dict[str, Any], name: str, kind: type, *, service: str) -> Any:
    """The answer's `name`, which the contract says is a `kind`; UnexpectedAnswer otherwise."""
    value = answer.get(name)
    if not isinstance(value, kind):
        raise UnexpectedAnswer(f"{service}: {name} missing")
    return value


def raise_for_400(status: int, answer: dict[str, Any], *, service: str) -> None:
    """Turn a 400 no caller gave a meaning to into RequestInvalid (its error code only)."""
    if status == 400:
        raise RequestInvalid(f"{service}: {answer.get('error', 'bad request')}")


class SignedJsonService:
    """Base of the service clients: one signed JSON client to the service's base URL."""

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        app_id: str,
        secret: str,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = SignedJsonClient(
            session, base_url=base_url, app_id=app_id, secret=secret, timeout=timeout, clock=clock
        )

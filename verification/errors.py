"""Typed failures of the verification services, as the callers need to tell them apart."""

from __future__ import annotations

from typing import ClassVar


class VerificationError(Exception):
    """A call to a verification service failed; nothing was decided about the person."""

    # Transient errors may succeed if the same call is made again a little later.
    transient: ClassVar[bool] = False


class ServiceUnavailable(VerificationError):
    """Timeout, connection failure or a 5xx answer."""

    transient = True


class CredentialsRejected(VerificationError):
    """The service refused our app id or signature (401/403): a configuration error."""


class RequestInvalid(VerificationError):
    """The service found the request malformed (400)."""


class UnexpectedAnswer(VerificationError):
    """The answer was not what the service's contract promises."""

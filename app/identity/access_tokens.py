"""Short-lived access tokens (JWT), signed HS256, algorithm pinned, keys named by `kid`.

The signing keys come from JWT_SIGNING_KEYS (`kid:secret,kid2:secret`): the first signs and
names itself in the token's header, every one listed verifies, so a key rotates by putting a
new one first and removing the old one once the tokens it signed have expired. A token whose
header names no kid, or one not listed, is refused like any other invalid token.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from app.errors import TokenExpired, TokenInvalid
from seals.keyspec import KEY_ID  # the key-id rule of every key-list setting

ALGORITHM = "HS256"
# The kid of the one key used when JWT_SIGNING_KEYS is empty (development and tests): the app's
# SECRET_KEY itself, as before key ids existed. Production requires JWT_SIGNING_KEYS.
DEFAULT_KID = "s0"


def parse_signing_keys(spec: str, secret_key: str) -> tuple[tuple[str, str], ...]:
    """`kid:secret,...` as ordered (kid, secret) pairs; empty: `DEFAULT_KID` -> SECRET_KEY.

    ValueError (naming the setting, never a secret) if an entry is malformed or a kid repeats."""
    keys: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, _, secret = item.partition(":")
        if not KEY_ID.fullmatch(kid) or not secret:
            raise ValueError(
                "JWT_SIGNING_KEYS: each entry is kid:secret (kid: 1-16 of A-Z a-z 0-9 _ -)"
            )
        if kid in dict(keys):
            raise ValueError(f"JWT_SIGNING_KEYS: key id {kid!r} is listed twice")
        keys.append((kid, secret))
    if not keys:
        if not secret_key:
            raise ValueError("JWT_SIGNING_KEYS is empty and there is no SECRET_KEY to fall back on")
        keys.append((DEFAULT_KID, secret_key))
    return tuple(keys)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a citizen (mini-program user) or a staff member, with roles and scopes.

    `scopes` maps a role to the hall or department ids it is limited to, e.g.
    `{"window_clerk": [3]}`; roles absent from `scopes` are unscoped (admin).
    """

    kind: str  # "user" | "staff"
    id: int
    roles: tuple[str, ...] = ()
    scopes: dict[str, list[int]] = field(default_factory=dict)
    jti: str = ""
    family_id: str = ""
    # A citizen's identity assurance when the token was issued (app/identity/assurance.py):
    # the lasting level (none / checksum / verified) and when the face was last verified. For
    # the client's benefit: actions read the level from the account when they happen.
    identity_level: str | None = None
    face_verified_at: int | None = None

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


@dataclass(frozen=True)
class TokenSettings:
    """How access tokens are signed and checked.

    `signing_keys` are (kid, secret) pairs, the first signing; left empty, `secret` is the one
    key, under `DEFAULT_KID` (the shape this class had before key ids)."""

    secret: str
    issuer: str
    audience: str
    ttl_seconds: int
    signing_keys: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.signing_keys:
            object.__setattr__(self, "signing_keys", parse_signing_keys("", self.secret))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TokenSettings:
        """The settings of an app config (JWT_SIGNING_KEYS, else SECRET_KEY)."""
        return cls(
            secret=config["SECRET_KEY"],
            issuer=config["JWT_ISSUER"],
            audience=config["JWT_AUDIENCE"],
            ttl_seconds=config["ACCESS_TOKEN_TTL_SECONDS"],
            signing_keys=parse_signing_keys(
                config.get("JWT_SIGNING_KEYS", ""), config["SECRET_KEY"]
            ),
        )

    @property
    def current_key(self) -> tuple[str, str]:
        """(kid, secret) of the key that signs new tokens."""
        return self.signing_keys[0]

    def verifying_key(self, kid: object) -> str | None:
        """The secret listed under `kid`, or None (no kid, or one not listed any more)."""
        return dict(self.signing_keys).get(kid) if isinstance(kid, str) else None


def issue_access_token(
    settings: TokenSettings, principal: Principal, *, now: dt.datetime
) -> tuple[str, dt.datetime]:
    """Sign an access token for `principal`; returns the token and its expiry."""
    expires = now + dt.timedelta(seconds=settings.ttl_seconds)
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": f"{principal.kind}:{principal.id}",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": principal.jti or uuid.uuid4().hex,
        "roles": list(principal.roles),
        "scopes": principal.scopes,
        "fam": principal.family_id,
    }
    if principal.identity_level is not None:
        claims["ial"] = principal.identity_level
        claims["face_at"] = principal.face_verified_at
    kid, secret = settings.current_key
    token = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})
    return token, expires


def decode_access_token(settings: TokenSettings, token: str, *, now: dt.datetime) -> Principal:
    """Verify signature, algorithm, issuer, audience and times; return the principal."""
    try:
        # The header is read before the signature is checked only to pick the key; a kid that
        # is absent or unknown gets no key, so the token is refused like a forged one.
        secret = settings.verifying_key(_unverified_kid(token))
        if secret is None:
            raise TokenInvalid()
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # pinned: "none" and key-confusion tricks are refused
            audience=settings.audience,
            issuer=settings.issuer,
            # `fam` too: a token outside a login family could be neither logged out nor revoked.
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "fam"]},
            leeway=dt.timedelta(seconds=5),
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid() from exc
    # PyJWT checks exp against the wall clock; also check against the injected `now`.
    if claims["exp"] < int(now.timestamp()) - 5:
        raise TokenExpired()
    kind, _, raw_id = str(claims["sub"]).partition(":")
    if kind not in {"user", "staff"} or not raw_id.isdigit():
        raise TokenInvalid()
    roles = claims.get("roles") or []
    scopes = claims.get("scopes") or {}
    if not isinstance(roles, list) or not _well_formed_scopes(scopes) or not claims["fam"]:
        raise TokenInvalid()
    return Principal(
        kind=kind,
        id=int(raw_id),
        roles=tuple(str(r) for r in roles),
        scopes={str(k): [int(i) for i in v] for k, v in scopes.items()},
        jti=str(claims["jti"]),
        family_id=str(claims["fam"]),
    )


# The alphabet of an unpadded base64url segment, as this module's tokens are written.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _unverified_kid(token: str) -> object:
    """The `kid` named by the token's header, unverified (None when it cannot be read).

    Only the header segment is decoded: `jwt.get_unverified_header` would validate and decode
    all three segments character by character, as `jwt.decode` does again right after, for a
    third of a request's token work. `jwt.decode` still checks the whole token, this header
    included (same bytes, so the kid that chose the key is the one it verifies under)."""
    segment, dot, _ = token.partition(".")
    segment = segment.rstrip("=")  # padding, which `jwt.decode` then checks as before
    if not dot or len(segment) > 1024 or not _SEGMENT.fullmatch(segment):
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # binascii.Error and JSONDecodeError (UnicodeDecodeError too) are both
        return None
    return header.get("kid") if isinstance(header, dict) else None


def _well_formed_scopes(scopes: object) -> bool:
    """{"role": [hall or department id, ...]}: anything else is a token we did not issue."""
    return isinstance(scopes, dict) and all(
        isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        for ids in scopes.values()
    )

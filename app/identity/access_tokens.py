"""Short-lived access tokens (JWT), signed HS256 with the app secret, algorithm pinned."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import jwt

from app.errors import TokenExpired, TokenInvalid

ALGORITHM = "HS256"


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
    secret: str
    issuer: str
    audience: str
    ttl_seconds: int


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
    return jwt.encode(claims, settings.secret, algorithm=ALGORITHM), expires


def decode_access_token(settings: TokenSettings, token: str, *, now: dt.datetime) -> Principal:
    """Verify signature, algorithm, issuer, audience and times; return the principal."""
    try:
        claims = jwt.decode(
            token,
            settings.secret,
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


def _well_formed_scopes(scopes: object) -> bool:
    """{"role": [hall or department id, ...]}: anything else is a token we did not issue."""
    return isinstance(scopes, dict) and all(
        isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        for ids in scopes.values()
    )

"""Authorisation for every view: who may call it, checked before anything else of the request.

Every view function carries exactly one rule, set by one of these decorators, and
`tests/core/test_routes_authz.py` fails when a registered route has none. Rules:

- `@public`: anyone (health, login, verification pages).
- `@citizen_required`: a mini-program user's access token.
- `@citizen_required_family_in_view`: the same, the login family's revocation asked by the
  view's own first statement (the citizen's take).
- `@staff_required("window_clerk", "hall_manager")`: a staff token with one of the roles;
  scope (which hall or department) is then checked in the view with `require_scope`.
- `@login_required`: any valid token, citizen or staff.
- `@screen_or_staff("window_clerk", "hall_manager")`: a hall display's own token
  (`Authorization: Display <token>`), or a staff token with one of the roles. A display token
  is refused by every other rule.

The rule is checked by `authorise_request`, before flask-smorest reads the body or the query:
a caller without the right token learns nothing of a protected operation's fields (401/403
before 422). The view's own wrapper checks again only if that hook did not run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from app.db import get_session, utcnow
from app.errors import Forbidden, TokenExpired, TokenInvalid, Unauthenticated
from app.identity.access_tokens import Principal, TokenSettings, decode_access_token
from blueprints.http import view_method

F = TypeVar("F", bound=Callable[..., Any])

AUTHZ_ATTRIBUTE = "__authz__"
CHECK_ATTRIBUTE = "__authz_check__"
ADMIN_ROLE = "admin"
DISPLAY_SCHEME = "display"
DISPLAY_ROLE = "hall_display"


def token_settings() -> TokenSettings:
    """The access-token settings of the running app."""
    return TokenSettings.from_config(current_app.config)


def mark_rule(fn: F, rule: str) -> F:
    """Record `fn`'s authorisation rule (the console's page decorators use it too)."""
    setattr(fn, AUTHZ_ATTRIBUTE, rule)
    return fn


_mark = mark_rule


def public(fn: F) -> F:
    """Anyone may call this view; its OpenAPI operation asks for no bearer token."""
    # flask-smorest's `manual_doc` is merged into the operation, overriding the global
    # `security` of the document (API_SPEC_OPTIONS) for this operation only.
    apidoc: dict[str, Any] = dict(getattr(fn, "_apidoc", {}))
    apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), "security": []}
    vars(fn)["_apidoc"] = apidoc
    return _mark(fn, "public")


def _authenticate(*, check_family: bool = True) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == DISPLAY_SCHEME and token.strip():
        raise Forbidden("大厅屏凭证只能读取大厅屏内容")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    principal = decode_access_token(token_settings(), token.strip(), now=utcnow())
    if not check_family:
        # The view asks with its first statement (`citizen_required_family_in_view`); until
        # then nothing may act for the caller.
        g.unconfirmed_principal = principal
        return principal
    # Logout and refresh-token reuse revoke a whole login family; its access tokens die with it.
    from app.identity.sessions import is_family_active

    if principal.family_id and not is_family_active(get_session(), principal.family_id):
        raise _family_ended()
    g.principal = principal
    return principal


def _family_ended() -> TokenInvalid:
    return TokenInvalid("登录已失效，请重新登录")


def unconfirmed_principal() -> Principal:
    """Whom the token of a `citizen_required_family_in_view` view names, before the view has
    confirmed the login family: for the view's first statement, which asks about the family
    (`app.identity.sessions.family_active_column`), and for nothing else."""
    principal: Principal | None = g.get("unconfirmed_principal")
    if principal is None:
        raise Unauthenticated()
    return principal


def confirm_family(active: bool) -> Principal:
    """End the family check of a `citizen_required_family_in_view` view with what its first
    statement read: refuse a revoked (or unknown) login family as every other rule does, else
    make the caller the request's principal (`current_principal`)."""
    principal = unconfirmed_principal()
    if not active:
        raise _family_ended()
    del g.unconfirmed_principal
    g.principal = principal
    return principal


def caller_key() -> str:
    """Rate-limit key of a limit that is about the caller rather than the network: the signed-in
    citizen or staff member when the bearer token is valid, else the client address.

    People sharing a hall's Wi-Fi, a carrier's NAT or the load balancer's address must not
    share one quota. The view's rule (`authorise_request`, before any limit) has normally
    authenticated the caller already; the token is decoded here only when it has not.
    """
    # A token whose login family its view checks later keys the limit as well: the limit
    # counts attempts, and the view refuses a revoked family's attempt anyway.
    principal: Principal | None = g.get("principal") or g.get("unconfirmed_principal")
    if principal is not None:
        return f"{principal.kind}:{principal.id}"
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            principal = decode_access_token(token_settings(), token.strip(), now=utcnow())
        except (TokenInvalid, TokenExpired):
            pass
        else:
            return f"{principal.kind}:{principal.id}"
    return get_remote_address()


def current_principal() -> Principal:
    """The authenticated caller of this request (set by the view's rule)."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise Unauthenticated()
    return principal


def _authenticate_screen() -> Principal:
    """A hall display's token (`Authorization: Display <token>`), or else a bearer token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != DISPLAY_SCHEME:
        return _authenticate()
    from app.queueing import displays

    session = get_session()
    display = displays.authenticate(session, token.strip(), now=utcnow())
    session.commit()  # when the screen was last seen, if it was noted
    principal = Principal(
        kind="display",
        id=display.id,
        roles=(DISPLAY_ROLE,),
        scopes={DISPLAY_ROLE: [display.hall_id]},
    )
    g.principal = principal
    return principal


def _guarded(
    rule: str,
    check: Callable[[Principal], None],
    authenticate: Callable[[], Principal] = _authenticate,
) -> Callable[[F], F]:
    def authorise() -> None:
        check(authenticate())

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not g.get("authorised"):
                authorise()
            return fn(*args, **kwargs)

        setattr(wrapper, CHECK_ATTRIBUTE, authorise)
        # functools.wraps keeps fn's signature at run time; mypy sees only the wrapper's.
        return _mark(cast(F, wrapper), rule)

    return decorator


def authorise_request() -> None:
    """Check the rule of the view about to run (a `before_request` hook).

    The decorators flask-smorest stacks above the rule (arguments, response, ...) copy the
    function's attributes onto their wrappers, so the outermost function carries the check.
    """
    if request.routing_exception is not None:
        return  # 404/405: nothing to authorise
    authorise = getattr(view_method(), CHECK_ATTRIBUTE, None)
    if authorise is not None:
        authorise()
        g.authorised = True


def login_required(fn: F) -> F:
    """Any valid access token, citizen or staff."""
    return _guarded("login", lambda principal: None)(fn)


def _require_user(principal: Principal) -> None:
    if not principal.is_user:
        raise Forbidden("仅限小程序用户使用")


def citizen_required(fn: F) -> F:
    """A mini-program user's token."""
    return _guarded("citizen", _require_user)(fn)


def citizen_required_family_in_view(fn: F) -> F:
    """A mini-program user's token, as `citizen_required`, except that the view itself asks
    whether the token's login family is still active, with a column of the first statement
    it makes anyway (`app.identity.sessions.family_active_column`), and ends the check with
    `confirm_family` before anything else: one statement fewer on the citizen's take, the
    busiest write (measured: about 6 % of its CPU).

    Until `confirm_family`, `current_principal` refuses, so nothing can act for the caller;
    `unconfirmed_principal` names whom the token is for. The signature, expiry, issuer and
    role are checked before the view as for every rule; a revoked family is refused by the
    view's first statement, after the body has been read (a revoked token's holder may learn
    a 422 about a body, never anything of the data).
    """
    return _guarded("citizen", _require_user, _authenticate_family_in_view)(fn)


def _authenticate_family_in_view() -> Principal:
    return _authenticate(check_family=False)


def _require_staff(principal: Principal, roles: tuple[str, ...]) -> None:
    if not principal.is_staff:
        raise Forbidden("仅限工作人员使用")
    if roles and not principal.has_role(ADMIN_ROLE, *roles):
        raise Forbidden("当前账号没有该操作的权限", required_roles=list(roles))


def staff_required(*roles: str) -> Callable[[F], F]:
    """A staff token holding one of `roles` (admin always passes)."""

    def check(principal: Principal) -> None:
        _require_staff(principal, roles)

    return _guarded("staff:" + ",".join(roles), check)


def screen_or_staff(*roles: str) -> Callable[[F], F]:
    """A hall display's own token, or a staff token holding one of `roles` (admin passes).

    The view then checks the hall with `require_scope((*roles, DISPLAY_ROLE), hall_id)`.
    """

    def check(principal: Principal) -> None:
        if principal.kind != "display":
            _require_staff(principal, roles)

    return _guarded("screen:" + ",".join(roles), check, _authenticate_screen)


def require_scope(roles: Iterable[str], scope_id: int) -> None:
    """Refuse unless the caller holds one of `roles` scoped to `scope_id` (a hall or department).

    Admin is unscoped. A role with no scope list in the token is unscoped too (hall manager of
    the whole district, for instance).
    """
    principal = current_principal()
    if principal.has_role(ADMIN_ROLE):
        return
    for role in roles:
        if role not in principal.roles:
            continue
        allowed = principal.scopes.get(role)
        if allowed is None or scope_id in allowed:
            return
    raise Forbidden("无权处理其他大厅或部门的业务", scope_id=scope_id)


def require_self(user_id: int) -> None:
    """A citizen may act only on their own records."""
    principal = current_principal()
    if not (principal.is_user and principal.id == user_id):
        raise Forbidden("无权查看他人的信息")

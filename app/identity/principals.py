"""Who a login session belongs to, read afresh from the database (roles change, accounts close)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import TokenInvalid
from app.identity.access_tokens import Principal
from app.identity.assurance import lasting_level
from app.identity.models import PrincipalKind, StaffAccount, StaffRoleGrant, User

CITIZEN_ROLE = "citizen"


def citizen_principal(user: User) -> Principal:
    """An enabled citizen's principal, from the columns of their row that tokens carry."""
    return Principal(
        kind=PrincipalKind.USER.value,
        id=user.id,
        roles=(CITIZEN_ROLE,),
        identity_level=lasting_level(user).name.lower(),
        face_verified_at=(
            int(user.face_verified_at.timestamp()) if user.face_verified_at else None
        ),
    )


def principal_for(session: Session, kind: str, principal_id: int) -> Principal:
    """The current principal of a user or staff account; TokenInvalid if gone or disabled."""
    if kind == PrincipalKind.USER:
        user = session.get(User, principal_id)
        if user is None or user.disabled:
            raise TokenInvalid("账号不可用，请重新登录")
        return citizen_principal(user)
    if kind == PrincipalKind.STAFF:
        staff = session.get(StaffAccount, principal_id)
        if staff is None or not staff.active:
            raise TokenInvalid("账号不可用，请重新登录")
        roles, scopes = staff_roles_and_scopes(session, staff.id)
        return Principal(kind=PrincipalKind.STAFF.value, id=staff.id, roles=roles, scopes=scopes)
    raise TokenInvalid()


def staff_roles_and_scopes(
    session: Session, staff_id: int
) -> tuple[tuple[str, ...], dict[str, list[int]]]:
    """Roles of a staff member and, per scoped role, the hall or department ids it covers.

    A role granted once without its scope id (a hall manager of the whole district) is unscoped,
    and unscoped wins over any scoped grant of the same role: `require_scope` reads a role
    missing from `scopes` as "everywhere".
    """
    grants = session.scalars(
        select(StaffRoleGrant)
        .where(StaffRoleGrant.staff_id == staff_id)
        .order_by(StaffRoleGrant.id)
    ).all()
    roles: list[str] = []
    scoped: dict[str, set[int]] = {}
    unscoped: set[str] = set()
    for grant in grants:
        role = grant.role.value
        if role not in roles:
            roles.append(role)
        scope_kind = grant.role.scope_kind
        scope_id = {"hall": grant.hall_id, "department": grant.department_id}.get(scope_kind or "")
        if scope_id is None:
            unscoped.add(role)
        else:
            scoped.setdefault(role, set()).add(scope_id)
    scopes = {role: sorted(ids) for role, ids in scoped.items() if role not in unscoped}
    return tuple(roles), scopes

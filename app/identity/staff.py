"""Staff accounts: creation, roles, login with lockout, passwords, deactivation.

Every change is written to the audit chain with its actor. Functions flush and never commit,
except that a failed login's bookkeeping (failure counter, lock, audit entry) must survive the
failed request: those refusals carry the `KeepsWrites` mixin, and the caller commits before
letting them propagate (see `authenticate`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.audit.service import Actor, record
from app.db import affected_rows
from app.errors import ValidationFailed
from app.identity import passwords
from app.identity.errors import (
    AccountDisabled,
    AccountLocked,
    CannotDeactivateSelf,
    CurrentPasswordWrong,
    LastAdmin,
    LoginFailed,
    PasswordUnchanged,
    RoleScopeInvalid,
    RolesRequired,
    StaffNotFound,
    UsernameInvalid,
    UsernameTaken,
)
from app.identity.models import (
    StaffAccount,
    StaffRole,
    StaffRoleGrant,
)
from app.identity.sessions import end_all_sessions
from app.organisation.models import Department, Hall

USERNAME_PATTERN = re.compile(r"[a-z0-9._-]{3,64}")


# --- grants -----------------------------------------------------------------------------------


class GrantSpec(NamedTuple):
    """A role and its scope, as asked for (a plain `(role, hall_id, department_id)` works too)."""

    role: StaffRole
    hall_id: int | None = None
    department_id: int | None = None


def _grant_key(grant: StaffRoleGrant | GrantSpec) -> GrantSpec:
    return GrantSpec(StaffRole(grant.role), grant.hall_id, grant.department_id)


def _grant_json(grant: GrantSpec) -> dict[str, Any]:
    return {
        "role": grant.role.value,
        "hall_id": grant.hall_id,
        "department_id": grant.department_id,
    }


def validate_grants(
    session: Session, grants: Iterable[tuple[StaffRole | str, int | None, int | None]]
) -> list[GrantSpec]:
    """Check each grant's scope against its role and the existing halls/departments; dedupe."""
    cleaned: list[GrantSpec] = []
    for index, (raw_role, hall_id, department_id) in enumerate(grants):
        try:
            role = StaffRole(raw_role)
        except ValueError:
            raise RoleScopeInvalid("未知的角色", index=index, role=str(raw_role)) from None
        kind = role.scope_kind
        if kind == "hall":
            if hall_id is None or department_id is not None:
                raise RoleScopeInvalid(index=index, role=role.value, expected="hall")
            if session.get(Hall, hall_id) is None:
                raise RoleScopeInvalid("指定的大厅不存在", index=index, hall_id=hall_id)
        elif kind == "department":
            if department_id is None or hall_id is not None:
                raise RoleScopeInvalid(index=index, role=role.value, expected="department")
            if session.get(Department, department_id) is None:
                raise RoleScopeInvalid("指定的部门不存在", index=index, department_id=department_id)
        elif hall_id is not None or department_id is not None:
            raise RoleScopeInvalid(index=index, role=role.value, expected=None)
        spec = GrantSpec(role, hall_id, department_id)
        if spec not in cleaned:
            cleaned.append(spec)
    if not cleaned:
        raise RolesRequired()
    return cleaned


def normalise_username(username: str) -> str:
    """Usernames compare case-insensitively and without surrounding blanks."""
    return username.strip().lower()


def _check_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise UsernameInvalid()
    return name


# --- queries ----------------------------------------------------------------------------------


def get_staff(session: Session, staff_id: int) -> StaffAccount:
    """The staff account `staff_id`, or 404."""
    account = session.get(StaffAccount, staff_id)
    if account is None:
        raise StaffNotFound()
    return account


def find_by_username(session: Session, username: str) -> StaffAccount | None:
    """The account with this username (case-insensitive), if any."""
    return session.scalars(
        select(StaffAccount).where(StaffAccount.username == normalise_username(username))
    ).one_or_none()


def list_staff(
    session: Session,
    *,
    hall_id: int | None = None,
    department_id: int | None = None,
    role: StaffRole | None = None,
    active: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[StaffAccount], int]:
    """Staff matching the filters (a grant must match role and scope together), and the total."""
    query = select(StaffAccount)
    if hall_id is not None or department_id is not None or role is not None:
        grant_filter = select(StaffRoleGrant.staff_id)
        if role is not None:
            grant_filter = grant_filter.where(StaffRoleGrant.role == role)
        if hall_id is not None:
            grant_filter = grant_filter.where(StaffRoleGrant.hall_id == hall_id)
        if department_id is not None:
            grant_filter = grant_filter.where(StaffRoleGrant.department_id == department_id)
        query = query.where(StaffAccount.id.in_(grant_filter))
    if active is not None:
        query = query.where(StaffAccount.active.is_(active))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(StaffAccount.grants))
        .order_by(StaffAccount.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def _active_admin_count(session: Session, *, excluding: int | None = None) -> int:
    query = (
        select(func.count(func.distinct(StaffRoleGrant.staff_id)))
        .join(StaffAccount, StaffAccount.id == StaffRoleGrant.staff_id)
        .where(StaffRoleGrant.role == StaffRole.ADMIN, StaffAccount.active.is_(True))
    )
    if excluding is not None:
        query = query.where(StaffAccount.id != excluding)
    return session.scalar(query) or 0


def _is_admin(account: StaffAccount) -> bool:
    return any(grant.role == StaffRole.ADMIN for grant in account.grants)


# --- creation and changes ---------------------------------------------------------------------


def create_staff(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    grants: Sequence[tuple[StaffRole | str, int | None, int | None]],
    actor: Actor,
    now: dt.datetime,
    request_id: str | None = None,
) -> StaffAccount:
    """Create an active staff account with its role grants."""
    name = _check_username(username)
    display = display_name.strip()
    if not display or len(display) > 128:
        raise ValidationFailed("姓名不能为空且不超过 128 个字符", field="display_name")
    passwords.check_password_policy(password, username=name)
    specs = validate_grants(session, grants)
    if find_by_username(session, name) is not None:
        raise UsernameTaken(username=name)

    account = StaffAccount(
        username=name,
        display_name=display,
        password_hash=passwords.hash_password(password),
        active=True,
        failed_logins=0,
        password_changed_at=now,
        created_at=now,
        grants=[
            StaffRoleGrant(
                role=s.role, hall_id=s.hall_id, department_id=s.department_id, created_at=now
            )
            for s in specs
        ],
    )
    try:
        # A concurrent create with the same username loses here, inside a savepoint so the
        # caller's transaction stays usable.
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        raise UsernameTaken(username=name) from None
    record(
        session,
        "staff.created",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
        details={"grants": [_grant_json(s) for s in specs]},
        request_id=request_id,
    )
    return account


def update_grants(
    session: Session,
    account: StaffAccount,
    grants: Sequence[tuple[StaffRole | str, int | None, int | None]],
    *,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None = None,
) -> StaffAccount:
    """Replace the account's roles; its sessions end so the new roles apply at once."""
    specs = validate_grants(session, grants)
    current = {_grant_key(g): g for g in account.grants}
    wanted = set(specs)
    removed = [key for key in current if key not in wanted]
    added = [spec for spec in specs if spec not in current]
    if not removed and not added:
        return account
    losing_admin = any(key.role == StaffRole.ADMIN for key in removed) and not any(
        spec.role == StaffRole.ADMIN for spec in specs
    )
    if losing_admin and account.active and _active_admin_count(session, excluding=account.id) == 0:
        raise LastAdmin()

    # Keep unchanged grants (their rows and ids) and touch only the difference, so the unique
    # (staff, role, scope) constraint never sees a delete and an insert of the same grant.
    for key in removed:
        account.grants.remove(current[key])
    for spec in added:
        account.grants.append(
            StaffRoleGrant(
                role=spec.role,
                hall_id=spec.hall_id,
                department_id=spec.department_id,
                created_at=now,
            )
        )
    session.flush()
    end_all_sessions(session, "staff", account.id, now=now, reason="roles_changed")
    record(
        session,
        "staff.roles_changed",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
        details={
            "added": [_grant_json(s) for s in added],
            "removed": [_grant_json(k) for k in removed],
        },
        request_id=request_id,
    )
    return account


def rename(
    session: Session,
    account: StaffAccount,
    display_name: str,
    *,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None = None,
) -> StaffAccount:
    """Change the name shown for the account."""
    display = display_name.strip()
    if not display or len(display) > 128:
        raise ValidationFailed("姓名不能为空且不超过 128 个字符", field="display_name")
    if display == account.display_name:
        return account
    account.display_name = display
    session.flush()
    record(
        session,
        "staff.renamed",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
        request_id=request_id,
    )
    return account


def set_active(
    session: Session,
    account: StaffAccount,
    active: bool,
    *,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None = None,
) -> StaffAccount:
    """Activate or deactivate the account; deactivation ends its login sessions."""
    if account.active == active:
        return account
    if not active:
        if actor.kind == "staff" and actor.id == account.id:
            raise CannotDeactivateSelf()
        if _is_admin(account) and _active_admin_count(session, excluding=account.id) == 0:
            raise LastAdmin()
    account.active = active
    session.flush()
    if not active:
        end_all_sessions(session, "staff", account.id, now=now, reason="deactivated")
    record(
        session,
        "staff.reactivated" if active else "staff.deactivated",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
        request_id=request_id,
    )
    return account


def unlock(
    session: Session,
    account: StaffAccount,
    *,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None = None,
) -> StaffAccount:
    """Lift a lockout and forget the failed attempts."""
    was_locked = account.locked_until is not None and account.locked_until > now
    account.locked_until = None
    account.failed_logins = 0
    session.flush()
    record(
        session,
        "staff.unlocked",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
        details={"was_locked": was_locked},
        request_id=request_id,
    )
    return account


def reset_password(
    session: Session,
    account: StaffAccount,
    new_password: str,
    *,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None = None,
) -> StaffAccount:
    """Set a new password for someone who lost theirs: unlocks, and ends every session."""
    passwords.check_password_policy(new_password, username=account.username)
    account.password_hash = passwords.hash_password(new_password)
    account.password_changed_at = now
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    end_all_sessions(session, "staff", account.id, now=now, reason="password_reset")
    record(
        session,
        "staff.password_reset",
        actor=actor,
        now=now,
        subject_type="staff",
        subject_id=account.id,
        request_id=request_id,
    )
    return account


def change_password(
    session: Session,
    account: StaffAccount,
    current_password: str,
    new_password: str,
    *,
    now: dt.datetime,
    max_failures: int,
    lockout_minutes: int,
    keep_family_id: str | None = None,
    request_id: str | None = None,
) -> StaffAccount:
    """The staff member changes their own password; other sessions end, this one may stay.

    A wrong current password counts as a failed login: a stolen session must not become a way
    to guess the password without the lockout.
    """
    if not passwords.verify_password(account.password_hash, current_password):
        locked = _record_failure(
            session,
            account,
            now=now,
            max_failures=max_failures,
            lockout_minutes=lockout_minutes,
            reason="wrong_current_password",
            request_id=request_id,
        )
        if locked:
            end_all_sessions(session, "staff", account.id, now=now, reason="locked")
            raise AccountLocked(locked_until=_iso(account.locked_until))
        raise CurrentPasswordWrong()
    passwords.check_password_policy(new_password, username=account.username)
    if new_password == current_password:
        raise PasswordUnchanged()
    account.password_hash = passwords.hash_password(new_password)
    account.password_changed_at = now
    session.flush()
    end_all_sessions(
        session, "staff", account.id, now=now, reason="password_changed", keep=keep_family_id
    )
    record(
        session,
        "staff.password_changed",
        actor=Actor("staff", account.id),
        now=now,
        subject_type="staff",
        subject_id=account.id,
        request_id=request_id,
    )
    return account


# --- login ------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _record_failure(
    session: Session,
    account: StaffAccount,
    *,
    now: dt.datetime,
    max_failures: int,
    lockout_minutes: int,
    reason: str,
    request_id: str | None,
) -> bool:
    """Count a failed attempt; lock the account at `max_failures`. Returns whether it is locked.

    The increment is one atomic UPDATE, so parallel guesses cannot each read the same count and
    slip past the limit. It only counts while the account is unlocked: a guess that waited on
    the row lock behind the one that locked the account finds it locked and is refused as
    locked. The lock itself is a guarded UPDATE only one attempt wins; it resets the counter,
    giving a fresh `max_failures` attempts once the lock expires.
    """
    count = session.execute(
        update(StaffAccount)
        .where(
            StaffAccount.id == account.id,
            or_(StaffAccount.locked_until.is_(None), StaffAccount.locked_until <= now),
        )
        .values(failed_logins=StaffAccount.failed_logins + 1)
        .returning(StaffAccount.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.refresh(account, ["failed_logins", "locked_until"])
    if count is None:
        reason = "locked"
    record(
        session,
        "staff.login_failed",
        actor=Actor("anonymous"),
        now=now,
        subject_type="staff",
        subject_id=account.id,
        details={"reason": reason, "consecutive_failures": count},
        request_id=request_id,
    )
    if count is None:
        return True
    if count < max_failures:
        return False
    until = now + dt.timedelta(minutes=lockout_minutes)
    locked = session.execute(
        update(StaffAccount)
        .where(StaffAccount.id == account.id, StaffAccount.failed_logins >= max_failures)
        .values(locked_until=until, failed_logins=0)
        .execution_options(synchronize_session=False)
    )
    session.refresh(account, ["failed_logins", "locked_until"])
    if affected_rows(locked) == 0:
        return account.locked_until is not None and account.locked_until > now
    record(
        session,
        "staff.locked",
        actor=Actor.system(),
        now=now,
        subject_type="staff",
        subject_id=account.id,
        details={"locked_until": _iso(until), "after_failures": count},
        request_id=request_id,
    )
    return True


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    now: dt.datetime,
    max_failures: int,
    lockout_minutes: int,
    request_id: str | None = None,
) -> StaffAccount:
    """Check a staff login; on success reset the failure count and upgrade an old hash.

    Raises `LoginFailed` (unknown username and wrong password alike, with the same message and
    about the same time), `AccountLocked` (while locked, even with the right password) or
    `AccountDisabled` (right password, deactivated account). All carry `KeepsWrites`: the
    caller commits the flushed bookkeeping before returning the error.
    """
    account = find_by_username(session, username)
    if account is None:
        passwords.burn_verification(password)
        # The attempted name is not recorded: people type their password into it by mistake.
        record(
            session,
            "staff.login_failed",
            actor=Actor("anonymous"),
            now=now,
            details={"reason": "unknown_username"},
            request_id=request_id,
        )
        raise LoginFailed()

    if account.locked_until is not None and account.locked_until > now:
        record(
            session,
            "staff.login_failed",
            actor=Actor("anonymous"),
            now=now,
            subject_type="staff",
            subject_id=account.id,
            details={"reason": "locked"},
            request_id=request_id,
        )
        raise AccountLocked(locked_until=_iso(account.locked_until))

    if not passwords.verify_password(account.password_hash, password):
        if _record_failure(
            session,
            account,
            now=now,
            max_failures=max_failures,
            lockout_minutes=lockout_minutes,
            reason="wrong_password",
            request_id=request_id,
        ):
            raise AccountLocked(locked_until=_iso(account.locked_until))
        raise LoginFailed()

    if not account.active:
        # Only someone who knows the password learns that the account is disabled.
        record(
            session,
            "staff.login_failed",
            actor=Actor("anonymous"),
            now=now,
            subject_type="staff",
            subject_id=account.id,
            details={"reason": "inactive"},
            request_id=request_id,
        )
        raise AccountDisabled()

    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    session.flush()
    record(
        session,
        "staff.login",
        actor=Actor("staff", account.id),
        now=now,
        subject_type="staff",
        subject_id=account.id,
        request_id=request_id,
    )
    return account

"""`flask staff ...`: manage staff accounts from the server (the first admin, lost passwords).

Each command is one transaction: it calls the service, then commits. The audit actor is
`system`, since whoever runs the command acts with the server's own authority.

Roles take their scope from `--hall CODE` / `--department CODE`, or inline as `ROLE:CODE`
when one account needs several scopes:

    flask staff create --username lily --name 李莉 --role window_clerk --hall DHC
    flask staff create --username wen --name 温文 --role reviewer:QXJ --role hall_manager:DHC
"""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import DomainError
from app.identity import staff as staff_service
from app.identity.models import StaffAccount, StaffRole
from app.identity.staff import GrantSpec
from app.organisation.models import Department, Hall

staff_cli = AppGroup("staff", help="Staff accounts.")

_ROLE_HELP = (
    "Role, repeatable: " + ", ".join(r.value for r in StaffRole) + ". "
    "Write ROLE:CODE to give a hall or department code inline."
)


def _grants(roles: tuple[str, ...], hall: str | None, department: str | None) -> list[GrantSpec]:
    """Turn `--role` values and the shared `--hall`/`--department` into grants."""
    session = get_session()
    grants: list[GrantSpec] = []
    for value in roles:
        name, _, inline_code = value.partition(":")
        try:
            role = StaffRole(name.strip())
        except ValueError:
            raise click.BadParameter(f"unknown role {name!r}", param_hint="--role") from None
        kind = role.scope_kind
        code = inline_code.strip() or (hall if kind == "hall" else department)
        if kind is None:
            if inline_code:
                raise click.BadParameter(f"{role.value} takes no scope", param_hint="--role")
            grants.append(GrantSpec(role))
            continue
        if not code:
            raise click.BadParameter(
                f"{role.value} needs --{kind} CODE (or {role.value}:CODE)", param_hint="--role"
            )
        model = Hall if kind == "hall" else Department
        scope_id = session.scalar(select(model.id).where(model.code == code))
        if scope_id is None:
            raise click.BadParameter(f"no {kind} with code {code!r}", param_hint=f"--{kind}")
        grants.append(
            GrantSpec(role, hall_id=scope_id) if kind == "hall" else GrantSpec(role, None, scope_id)
        )
    return grants


def _password(password_env: str | None) -> str:
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise click.UsageError(f"environment variable {password_env} is empty or unset")
        return value
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _account(username: str) -> StaffAccount:
    account = staff_service.find_by_username(get_session(), username)
    if account is None:
        raise click.ClickException(f"no staff account {username!r}")
    return account


def _describe(account: StaffAccount) -> str:
    roles = ", ".join(
        grant.role.value
        + (f"@hall:{grant.hall_id}" if grant.hall_id is not None else "")
        + (f"@department:{grant.department_id}" if grant.department_id is not None else "")
        for grant in account.grants
    )
    return roles or "-"


def _fail(error: DomainError) -> click.ClickException:
    details = f" {error.details}" if error.details else ""
    return click.ClickException(f"{error.code}: {error.message}{details}")


_password_env_option = click.option(
    "--password-env",
    metavar="VAR",
    help="Read the password from this environment variable instead of prompting (scripts).",
)


@staff_cli.command("create")
@click.option("--username", required=True, help="Login name: 3-64 of a-z 0-9 . _ -")
@click.option("--name", "display_name", required=True, help="Name shown to colleagues.")
@click.option("--role", "roles", multiple=True, required=True, help=_ROLE_HELP)
@click.option("--hall", metavar="CODE", help="Hall code for hall-scoped roles.")
@click.option("--department", metavar="CODE", help="Department code for department roles.")
@_password_env_option
def create(
    username: str,
    display_name: str,
    roles: tuple[str, ...],
    hall: str | None,
    department: str | None,
    password_env: str | None,
) -> None:
    """Create a staff account."""
    session = get_session()
    grants = _grants(roles, hall, department)
    password = _password(password_env)
    try:
        account = staff_service.create_staff(
            session,
            username=username,
            display_name=display_name,
            password=password,
            grants=grants,
            actor=Actor.system(),
            now=utcnow(),
        )
    except DomainError as error:
        raise _fail(error) from None
    session.commit()
    click.echo(f"created staff #{account.id} {account.username}: {_describe(account)}")


@staff_cli.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include deactivated accounts.")
def list_accounts(include_inactive: bool) -> None:
    """List staff accounts with their roles."""
    session = get_session()
    accounts, _total = staff_service.list_staff(
        session, active=None if include_inactive else True, limit=10_000
    )
    now = utcnow()
    for account in accounts:
        flags = []
        if not account.active:
            flags.append("inactive")
        if account.locked_until is not None and account.locked_until > now:
            flags.append(f"locked until {account.locked_until:%Y-%m-%d %H:%M}Z")
        suffix = f" [{', '.join(flags)}]" if flags else ""
        click.echo(
            f"{account.id:>5}  {account.username:<24} {account.display_name}  "
            f"{_describe(account)}{suffix}"
        )


@staff_cli.command("unlock")
@click.argument("username")
def unlock(username: str) -> None:
    """Lift a login lockout."""
    session = get_session()
    account = _account(username)
    staff_service.unlock(session, account, actor=Actor.system(), now=utcnow())
    session.commit()
    click.echo(f"unlocked {account.username}")


@staff_cli.command("set-roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help=_ROLE_HELP)
@click.option("--hall", metavar="CODE", help="Hall code for hall-scoped roles.")
@click.option("--department", metavar="CODE", help="Department code for department roles.")
def set_roles(
    username: str, roles: tuple[str, ...], hall: str | None, department: str | None
) -> None:
    """Replace an account's roles (its login sessions end)."""
    session = get_session()
    account = _account(username)
    try:
        staff_service.update_grants(
            session, account, _grants(roles, hall, department), actor=Actor.system(), now=utcnow()
        )
    except DomainError as error:
        raise _fail(error) from None
    session.commit()
    click.echo(f"{account.username}: {_describe(account)}")


@staff_cli.command("set-active")
@click.argument("username")
@click.option("--active/--inactive", required=True, help="Enable or disable the account.")
def set_active(username: str, active: bool) -> None:
    """Enable or disable an account (disabling ends its login sessions)."""
    session = get_session()
    account = _account(username)
    try:
        staff_service.set_active(session, account, active, actor=Actor.system(), now=utcnow())
    except DomainError as error:
        raise _fail(error) from None
    session.commit()
    click.echo(f"{account.username}: {'active' if active else 'inactive'}")


@staff_cli.command("reset-password")
@click.argument("username")
@_password_env_option
def reset_password(username: str, password_env: str | None) -> None:
    """Set a new password (unlocks the account and ends its login sessions)."""
    session = get_session()
    account = _account(username)
    try:
        staff_service.reset_password(
            session, account, _password(password_env), actor=Actor.system(), now=utcnow()
        )
    except DomainError as error:
        raise _fail(error) from None
    session.commit()
    click.echo(f"password reset for {account.username}")

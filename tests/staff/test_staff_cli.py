"""`flask staff ...`: the commands that create the first admin and rescue locked accounts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.identity.models import StaffAccount, StaffRole
from app.organisation.models import Department, Hall
from tests.factories.staff import STAFF_PASSWORD
from tests.support.staff import end_of_request, login

PASSWORD = "Qiaonan-2024!"


@pytest.fixture
def scopes(
    session: Session,
    create_hall: Callable[..., Hall],
    create_department: Callable[..., Department],
) -> tuple[Hall, Department]:
    hall = create_hall(code="PY-DHC", name="番禺区政务服务中心")
    department = create_department(code="PY-QXJ", name="番禺区气象局")
    session.commit()
    return hall, department


def run(runner: FlaskCliRunner, *args: str, **kwargs: object) -> Result:
    return runner.invoke(args=["staff", *args], **kwargs)  # type: ignore[arg-type]


def _account(session: Session, username: str) -> StaffAccount:
    return session.scalars(select(StaffAccount).where(StaffAccount.username == username)).one()


def test_cli_creates_an_account_that_can_then_log_in(
    runner: FlaskCliRunner,
    client: FlaskClient,
    session: Session,
    scopes: tuple[Hall, Department],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hall, _ = scopes
    monkeypatch.setenv("NEW_STAFF_PASSWORD", PASSWORD)

    result = run(
        runner,
        "create",
        "--username", "clerk.liang",
        "--name", "梁嘉怡",
        "--role", "window_clerk",
        "--hall", "PY-DHC",
        "--password-env", "NEW_STAFF_PASSWORD",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "clerk.liang" in result.output
    assert PASSWORD not in result.output
    response = login(client, "clerk.liang", PASSWORD)
    assert response.status_code == 200
    assert response.get_json()["staff"]["roles"] == [
        {"role": "window_clerk", "hall_id": hall.id, "department_id": None}
    ]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.created")).one()
    assert entry.actor_kind == "system" and entry.actor_id is None


def test_cli_takes_several_roles_with_inline_scopes(
    runner: FlaskCliRunner, session: Session, scopes: tuple[Hall, Department]
) -> None:
    hall, department = scopes

    result = run(
        runner,
        "create",
        "--username", "wen.manager",
        "--name", "温文",
        "--role", "hall_manager:PY-DHC",
        "--role", "reviewer:PY-QXJ",
        "--role", "admin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    grants = {(g.role, g.hall_id, g.department_id) for g in _account(session, "wen.manager").grants}
    assert grants == {
        (StaffRole.HALL_MANAGER, hall.id, None),
        (StaffRole.REVIEWER, None, department.id),
        (StaffRole.ADMIN, None, None),
    }


def test_cli_prompts_twice_and_refuses_mismatched_passwords(
    runner: FlaskCliRunner, session: Session, scopes: tuple[Hall, Department]
) -> None:
    result = run(
        runner,
        "create",
        "--username", "typo.user",
        "--name", "某人",
        "--role", "admin",
        input=f"{PASSWORD}\nsomething-else\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert _account(session, "typo.user").active


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "window_clerk"], "needs --hall"),
        (["--role", "window_clerk", "--hall", "NOPE"], "no hall"),
        (["--role", "chief"], "unknown role"),
        (["--role", "admin:PY-DHC"], "takes no scope"),
    ],
)
def test_cli_refuses_roles_without_a_valid_scope(
    runner: FlaskCliRunner,
    session: Session,
    scopes: tuple[Hall, Department],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("NEW_STAFF_PASSWORD", PASSWORD)

    result = run(
        runner,
        "create",
        "--username", "bad.scope",
        "--name", "某人",
        "--password-env", "NEW_STAFF_PASSWORD",
        *args,
    )  # fmt: skip
    end_of_request(session)

    assert result.exit_code != 0
    assert message in result.output
    assert session.scalar(select(StaffAccount).where(StaffAccount.username == "bad.scope")) is None


def test_cli_refuses_a_weak_password_and_writes_nothing(
    runner: FlaskCliRunner,
    session: Session,
    scopes: tuple[Hall, Department],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEW_STAFF_PASSWORD", "password")

    result = run(
        runner,
        "create",
        "--username", "weak.one",
        "--name", "某人",
        "--role", "admin",
        "--password-env", "NEW_STAFF_PASSWORD",
    )  # fmt: skip
    end_of_request(session)

    assert result.exit_code == 1
    assert "PASSWORD_TOO_WEAK" in result.output
    assert session.scalar(select(StaffAccount).where(StaffAccount.username == "weak.one")) is None


def test_cli_lists_unlocks_and_sets_roles(
    runner: FlaskCliRunner,
    client: FlaskClient,
    session: Session,
    scopes: tuple[Hall, Department],
    create_staff: Callable[..., StaffAccount],
) -> None:
    hall, department = scopes
    account = create_staff(username="locked.out", grants=[(StaffRole.WINDOW_CLERK, hall.id, None)])
    session.commit()
    for _ in range(5):
        login(client, "locked.out", "Wrong-password-1")
        end_of_request(session)
    assert login(client, "locked.out", STAFF_PASSWORD).status_code == 423

    listing = run(runner, "list")
    assert "locked.out" in listing.output and "locked until" in listing.output

    assert run(runner, "unlock", "locked.out").exit_code == 0
    assert login(client, "locked.out", STAFF_PASSWORD).status_code == 200

    roles = run(runner, "set-roles", "locked.out", "--role", "reviewer", "--department", "PY-QXJ")
    assert roles.exit_code == 0, roles.output
    session.refresh(account)
    assert [(g.role, g.department_id) for g in account.grants] == [
        (StaffRole.REVIEWER, department.id)
    ]
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.actor_kind == "system")
    ).all()
    assert "staff.unlocked" in actions and "staff.roles_changed" in actions


def test_cli_unlock_of_an_unknown_user_fails(runner: FlaskCliRunner, session: Session) -> None:
    result = run(runner, "unlock", "nobody")
    assert result.exit_code == 1 and "no staff account" in result.output

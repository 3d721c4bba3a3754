"""Staff account management: admins create and change accounts, hall managers see their clerks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.identity.models import StaffAccount, StaffRole
from app.organisation.models import Department, Hall
from tests.factories.staff import STAFF_PASSWORD
from tests.support.staff import assert_no_password_material, audit_actions, end_of_request, login

ACCOUNTS = "/api/v1/staff/accounts"
NEW_PASSWORD = "Shiqiao#2024a"


@pytest.fixture
def hall(create_hall: Callable[..., Hall]) -> Hall:
    return create_hall(name="东环街便民服务中心", town="东环街")


@pytest.fixture
def department(create_department: Callable[..., Department]) -> Department:
    return create_department(name="区气象局")


@pytest.fixture
def admin(session: Session, create_staff: Callable[..., StaffAccount]) -> StaffAccount:
    account = create_staff(username="admin.chen")
    session.commit()  # setup survives `end_of_request`, as rows made before a request do
    return account


@pytest.fixture
def admin_headers(
    admin: StaffAccount, staff_headers: Callable[[StaffAccount], dict[str, str]]
) -> dict[str, str]:
    return staff_headers(admin)


def _create_body(hall: Hall, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "clerk.wu",
        "display_name": "吴敏",
        "password": NEW_PASSWORD,
        "roles": [{"role": "window_clerk", "hall_id": hall.id}],
    }
    body.update(overrides)
    return body


def test_an_admin_creates_a_window_clerk_who_can_then_log_in(
    client: FlaskClient,
    session: Session,
    admin: StaffAccount,
    admin_headers: dict[str, str],
    hall: Hall,
) -> None:
    response = client.post(ACCOUNTS, json=_create_body(hall), headers=admin_headers)

    assert response.status_code == 201
    body = response.get_json()
    assert body["username"] == "clerk.wu"
    assert body["active"] is True
    assert body["roles"] == [{"role": "window_clerk", "hall_id": hall.id, "department_id": None}]
    assert_no_password_material(body)

    logged_in = login(client, "clerk.wu", NEW_PASSWORD)
    assert logged_in.status_code == 200

    created = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.created")).one()
    assert (created.actor_kind, created.actor_id) == ("staff", admin.id)
    assert created.subject_id == str(body["id"])
    assert NEW_PASSWORD not in str(created.details)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Sh0rt#pw", "too_short"),
        ("alllowercase-but-long", "too_few_character_classes"),
        ("ONLYUPPER12345", "too_few_character_classes"),
        ("Clerk.Wu", "too_short"),
        ("Clerk.wu.2024", None),  # acceptable: 3 classes, not the username
    ],
)
def test_weak_passwords_are_refused_with_422(
    client: FlaskClient, admin_headers: dict[str, str], hall: Hall, password: str, rule: str | None
) -> None:
    response = client.post(
        ACCOUNTS, json=_create_body(hall, password=password), headers=admin_headers
    )

    if rule is None:
        assert response.status_code == 201
        return
    assert response.status_code == 422
    assert response.get_json()["code"] == "PASSWORD_TOO_WEAK"
    assert rule in response.get_json()["details"]["rules"]


def test_a_password_equal_to_the_username_is_refused(
    client: FlaskClient, admin_headers: dict[str, str], hall: Hall
) -> None:
    body = _create_body(hall, username="panyu.2024-ok", password="Panyu.2024-OK")
    response = client.post(ACCOUNTS, json=body, headers=admin_headers)

    assert response.status_code == 422
    assert "same_as_username" in response.get_json()["details"]["rules"]


def test_a_duplicate_username_is_409_whatever_its_case(
    client: FlaskClient, session: Session, admin_headers: dict[str, str], hall: Hall
) -> None:
    assert client.post(ACCOUNTS, json=_create_body(hall), headers=admin_headers).status_code == 201

    again = client.post(
        ACCOUNTS, json=_create_body(hall, username="Clerk.Wu"), headers=admin_headers
    )
    end_of_request(session)

    assert again.status_code == 409
    assert again.get_json()["code"] == "USERNAME_TAKEN"
    count = session.scalar(
        select(func.count()).select_from(StaffAccount).where(StaffAccount.username == "clerk.wu")
    )
    assert count == 1


@pytest.mark.parametrize("username", ["ab", "Has Space", "名字", "a" * 65, "semi;colon"])
def test_malformed_usernames_are_refused(
    client: FlaskClient, admin_headers: dict[str, str], hall: Hall, username: str
) -> None:
    response = client.post(
        ACCOUNTS, json=_create_body(hall, username=username), headers=admin_headers
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "roles",
    [
        [{"role": "window_clerk"}],
        [{"role": "hall_manager", "department_id": "DEPT"}],
        [{"role": "reviewer", "hall_id": "HALL"}],
        [{"role": "policy_officer"}],
        [{"role": "admin", "hall_id": "HALL"}],
        [{"role": "window_clerk", "hall_id": 999_999}],
        [{"role": "reviewer", "department_id": 999_999}],
        [{"role": "window_clerk", "hall_id": "HALL", "department_id": "DEPT"}],
        [],
    ],
)
def test_a_role_with_the_wrong_scope_is_refused_and_nothing_is_created(
    client: FlaskClient,
    session: Session,
    admin_headers: dict[str, str],
    hall: Hall,
    department: Department,
    roles: list[dict[str, Any]],
) -> None:
    ids = {"HALL": hall.id, "DEPT": department.id}
    resolved = [{k: ids.get(v, v) for k, v in role.items()} for role in roles]

    response = client.post(ACCOUNTS, json=_create_body(hall, roles=resolved), headers=admin_headers)
    end_of_request(session)

    assert response.status_code == 422
    assert session.scalar(select(StaffAccount).where(StaffAccount.username == "clerk.wu")) is None


def test_an_account_may_hold_several_scoped_roles(
    client: FlaskClient, admin_headers: dict[str, str], hall: Hall, department: Department
) -> None:
    roles = [
        {"role": "window_clerk", "hall_id": hall.id},
        {"role": "reviewer", "department_id": department.id},
        {"role": "window_clerk", "hall_id": hall.id},  # a repeat is the same grant
    ]
    response = client.post(ACCOUNTS, json=_create_body(hall, roles=roles), headers=admin_headers)

    assert response.status_code == 201
    assert [r["role"] for r in response.get_json()["roles"]] == ["window_clerk", "reviewer"]


@pytest.fixture
def clerk(session: Session, create_staff: Callable[..., StaffAccount], hall: Hall) -> StaffAccount:
    account = create_staff(username="clerk.he", grants=[(StaffRole.WINDOW_CLERK, hall.id, None)])
    session.commit()
    return account


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", ACCOUNTS, None),
        (
            "post",
            ACCOUNTS,
            {
                "username": "x.y.z",
                "display_name": "某",
                "password": "x",
                "roles": [{"role": "admin"}],
            },
        ),
        ("get", ACCOUNTS + "/{id}", None),
        ("patch", ACCOUNTS + "/{id}", {"active": False}),
        ("post", ACCOUNTS + "/{id}/unlock", None),
        ("post", ACCOUNTS + "/{id}/reset-password", {"password": NEW_PASSWORD}),
    ],
)
def test_admin_endpoints_refuse_a_window_clerk(
    client: FlaskClient,
    session: Session,
    clerk: StaffAccount,
    admin: StaffAccount,
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    headers = staff_headers(clerk)
    response = getattr(client, method)(path.format(id=admin.id), json=body, headers=headers)

    assert response.status_code == 403
    session.refresh(admin)
    assert admin.active is True


def test_admin_endpoints_refuse_citizens_and_anonymous_callers(
    client: FlaskClient,
    create_user: Callable[..., Any],
    citizen_headers: Callable[..., dict[str, str]],
) -> None:
    assert client.get(ACCOUNTS).status_code == 401
    assert client.get(ACCOUNTS, headers=citizen_headers(create_user())).status_code == 403


def test_a_hall_manager_lists_only_the_window_clerks_of_their_own_hall(
    client: FlaskClient,
    create_staff: Callable[..., StaffAccount],
    create_hall: Callable[..., Hall],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    hall: Hall,
    clerk: StaffAccount,
) -> None:
    other_hall = create_hall(name="沙湾街便民服务中心", town="沙湾街")
    create_staff(username="clerk.elsewhere", grants=[(StaffRole.WINDOW_CLERK, other_hall.id, None)])
    create_staff(username="manager.peer", grants=[(StaffRole.HALL_MANAGER, hall.id, None)])
    manager = create_staff(
        username="manager.zhou", grants=[(StaffRole.HALL_MANAGER, hall.id, None)]
    )
    headers = staff_headers(manager)

    own = client.get(ACCOUNTS, query_string={"hall_id": hall.id}, headers=headers)
    assert own.status_code == 200
    assert [a["username"] for a in own.get_json()["items"]] == ["clerk.he"]
    assert_no_password_material(own.get_json())

    other = client.get(ACCOUNTS, query_string={"hall_id": other_hall.id}, headers=headers)
    assert other.status_code == 403

    unscoped = client.get(ACCOUNTS, headers=headers)
    assert unscoped.status_code == 403  # a manager may not ask for every hall's staff


def test_an_admin_lists_every_account_a_page_at_a_time(
    client: FlaskClient, admin_headers: dict[str, str], clerk: StaffAccount, hall: Hall
) -> None:
    everyone = client.get(ACCOUNTS, query_string={"page_size": 1}, headers=admin_headers)
    clerks = client.get(
        ACCOUNTS, query_string={"role": "window_clerk", "hall_id": hall.id}, headers=admin_headers
    )

    assert everyone.status_code == 200
    assert len(everyone.get_json()["items"]) == 1
    assert everyone.get_json()["total"] == 2
    assert [a["username"] for a in clerks.get_json()["items"]] == ["clerk.he"]


def test_changing_roles_applies_at_once_and_ends_the_old_logins(
    client: FlaskClient,
    session: Session,
    admin_headers: dict[str, str],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    clerk: StaffAccount,
    department: Department,
) -> None:
    clerk_headers = staff_headers(clerk)
    new_roles = [{"role": "reviewer", "department_id": department.id}]

    response = client.patch(
        f"{ACCOUNTS}/{clerk.id}", json={"roles": new_roles}, headers=admin_headers
    )

    assert response.status_code == 200
    assert response.get_json()["roles"] == [
        {"role": "reviewer", "hall_id": None, "department_id": department.id}
    ]
    assert client.get("/api/v1/staff/me", headers=clerk_headers).status_code == 401
    assert "staff.roles_changed" in audit_actions(session, clerk.id)


def test_deactivating_an_account_ends_its_logins_and_blocks_new_ones(
    client: FlaskClient,
    session: Session,
    admin: StaffAccount,
    admin_headers: dict[str, str],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    clerk: StaffAccount,
) -> None:
    clerk_headers = staff_headers(clerk)

    response = client.patch(f"{ACCOUNTS}/{clerk.id}", json={"active": False}, headers=admin_headers)

    assert response.status_code == 200 and response.get_json()["active"] is False
    assert client.get("/api/v1/staff/me", headers=clerk_headers).status_code == 401
    assert login(client, "clerk.he", STAFF_PASSWORD).get_json()["code"] == "ACCOUNT_DISABLED"
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "staff.deactivated")
    ).one()
    assert (entry.actor_id, entry.subject_id) == (admin.id, str(clerk.id))


def test_the_last_admin_cannot_be_removed_or_switch_themself_off(
    client: FlaskClient,
    session: Session,
    admin: StaffAccount,
    admin_headers: dict[str, str],
    hall: Hall,
) -> None:
    demote = client.patch(
        f"{ACCOUNTS}/{admin.id}",
        json={"roles": [{"role": "window_clerk", "hall_id": hall.id}]},
        headers=admin_headers,
    )
    switch_off = client.patch(
        f"{ACCOUNTS}/{admin.id}", json={"active": False}, headers=admin_headers
    )
    end_of_request(session)

    assert demote.status_code == 409 and demote.get_json()["code"] == "LAST_ADMIN"
    assert switch_off.status_code == 409
    session.refresh(admin)
    assert admin.active and [g.role for g in admin.grants] == [StaffRole.ADMIN]


def test_an_admin_renames_an_account(
    client: FlaskClient, admin_headers: dict[str, str], clerk: StaffAccount
) -> None:
    response = client.patch(
        f"{ACCOUNTS}/{clerk.id}", json={"display_name": "何嘉颖"}, headers=admin_headers
    )
    assert response.status_code == 200 and response.get_json()["display_name"] == "何嘉颖"


def test_an_empty_or_unknown_patch_is_refused(
    client: FlaskClient, admin_headers: dict[str, str], clerk: StaffAccount
) -> None:
    assert client.patch(f"{ACCOUNTS}/{clerk.id}", json={}, headers=admin_headers).status_code == 422
    unknown = client.patch(
        f"{ACCOUNTS}/{clerk.id}", json={"password_hash": "x"}, headers=admin_headers
    )
    assert unknown.status_code == 422


def test_an_unknown_account_is_404(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    response = client.post(f"{ACCOUNTS}/999999/unlock", headers=admin_headers)
    assert response.status_code == 404 and response.get_json()["code"] == "STAFF_NOT_FOUND"


def test_an_admin_unlocks_a_locked_account(
    client: FlaskClient, session: Session, admin_headers: dict[str, str], clerk: StaffAccount
) -> None:
    for _ in range(5):
        login(client, "clerk.he", "Wrong-password-1")
        end_of_request(session)
    assert login(client, "clerk.he", STAFF_PASSWORD).status_code == 423
    end_of_request(session)

    unlocked = client.post(f"{ACCOUNTS}/{clerk.id}/unlock", headers=admin_headers)

    assert unlocked.status_code == 200
    assert unlocked.get_json()["locked_until"] is None
    assert login(client, "clerk.he", STAFF_PASSWORD).status_code == 200
    assert "staff.unlocked" in audit_actions(session, clerk.id)


def test_a_password_reset_unlocks_and_replaces_the_old_password_and_logins(
    client: FlaskClient,
    session: Session,
    admin_headers: dict[str, str],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    clerk: StaffAccount,
) -> None:
    clerk_headers = staff_headers(clerk)

    weak = client.post(
        f"{ACCOUNTS}/{clerk.id}/reset-password", json={"password": "short"}, headers=admin_headers
    )
    reset = client.post(
        f"{ACCOUNTS}/{clerk.id}/reset-password",
        json={"password": NEW_PASSWORD},
        headers=admin_headers,
    )

    assert weak.status_code == 422
    assert reset.status_code == 200
    assert_no_password_material(reset.get_json())
    assert client.get("/api/v1/staff/me", headers=clerk_headers).status_code == 401
    assert login(client, "clerk.he", STAFF_PASSWORD).status_code == 401
    assert login(client, "clerk.he", NEW_PASSWORD).status_code == 200
    assert "staff.password_reset" in audit_actions(session, clerk.id)


def test_staff_change_their_own_password_and_keep_this_login_only(
    client: FlaskClient,
    session: Session,
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    clerk: StaffAccount,
) -> None:
    this_login = staff_headers(clerk)
    other_login = staff_headers(clerk)

    response = client.post(
        "/api/v1/staff/me/password",
        json={"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD},
        headers=this_login,
    )

    assert response.status_code == 204
    assert client.get("/api/v1/staff/me", headers=this_login).status_code == 200
    assert client.get("/api/v1/staff/me", headers=other_login).status_code == 401
    assert login(client, "clerk.he", NEW_PASSWORD).status_code == 200


def test_a_wrong_current_password_counts_as_a_failed_login(
    client: FlaskClient,
    session: Session,
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    clerk: StaffAccount,
) -> None:
    response = client.post(
        "/api/v1/staff/me/password",
        json={"current_password": "Wrong-password-1", "new_password": NEW_PASSWORD},
        headers=staff_headers(clerk),
    )
    end_of_request(session)

    assert response.status_code == 403
    assert response.get_json()["code"] == "CURRENT_PASSWORD_WRONG"
    session.refresh(clerk)
    assert clerk.failed_logins == 1

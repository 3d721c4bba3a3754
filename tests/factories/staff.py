"""Factories for halls, departments and staff accounts, and staff login headers."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy.orm import Session

from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant
from app.identity.sessions import TokenPair
from app.organisation.models import Department, Hall, HallKind

# Meets the password policy; every factory-made account has it unless told otherwise.
STAFF_PASSWORD = "Panyu-2024-pass"
# A deliberately cheap argon2 profile: a login against it verifies in microseconds. The app's
# hasher upgrades such a hash on the first login (`needs_rehash`), as it would in production.
TEST_HASHER = PasswordHasher.from_parameters(CHEAPEST)

_serial = itertools.count(1)

Grant = tuple[StaffRole | str, int | None, int | None]


@pytest.fixture
def create_hall(session: Session) -> Callable[..., Hall]:
    """Insert a hall: `create_hall(name=..., kind=HallKind.TOWN, town="市桥街")`."""

    def create(**fields: Any) -> Hall:
        n = next(_serial)
        fields.setdefault("code", f"HALL{n:04d}")
        fields.setdefault("name", f"测试便民服务中心{n}")
        fields.setdefault("kind", HallKind.TOWN)
        hall = Hall(**fields)
        session.add(hall)
        session.flush()
        return hall

    return create


@pytest.fixture
def create_department(session: Session) -> Callable[..., Department]:
    """Insert a department: `create_department(name="区气象局")`."""

    def create(**fields: Any) -> Department:
        n = next(_serial)
        fields.setdefault("code", f"DEPT{n:04d}")
        fields.setdefault("name", f"测试局{n}")
        department = Department(**fields)
        session.add(department)
        session.flush()
        return department

    return create


@pytest.fixture
def create_staff(session: Session) -> Callable[..., StaffAccount]:
    """Insert a staff account with `grants=[(role, hall_id, department_id), ...]` (admin if
    none given) and `password` (STAFF_PASSWORD by default); any column may be given too."""

    def create(
        *,
        grants: Sequence[Grant] = ((StaffRole.ADMIN, None, None),),
        password: str = STAFF_PASSWORD,
        **fields: Any,
    ) -> StaffAccount:
        n = next(_serial)
        fields.setdefault("username", f"staff.{n:04d}")
        fields.setdefault("display_name", f"测试人员{n}")
        fields.setdefault("password_hash", TEST_HASHER.hash(password))
        account = StaffAccount(**fields)
        account.grants = [
            StaffRoleGrant(role=StaffRole(role), hall_id=hall_id, department_id=department_id)
            for role, hall_id, department_id in grants
        ]
        session.add(account)
        session.flush()
        return account

    return create


@pytest.fixture
def staff_headers(
    start_login: Callable[..., TokenPair],
) -> Callable[[StaffAccount], dict[str, str]]:
    """`Authorization` headers carrying a valid staff access token for the account."""

    def headers(account: StaffAccount) -> dict[str, str]:
        pair = start_login("staff", account.id)
        return {"Authorization": f"Bearer {pair.access_token}"}

    return headers

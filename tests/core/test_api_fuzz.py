"""Property-based fuzzing of the OpenAPI document: no input a client can send gives a 5xx.

Each operation is called with generated (mostly invalid) data anonymously, as a citizen and
as an administrator, so requests reach past the authorisation rules into
validation and the services.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import Session

from app.identity.models import StaffAccount, User
from app.identity.sessions import TokenPair


@pytest.fixture
def api_schema(app: Flask, session: Session):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


# Each test walks every operation of the API; on a loaded 2-core machine that takes minutes.
pytestmark = pytest.mark.timeout(1200)

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def citizen_auth(
    create_user: Callable[..., User], citizen_headers: Callable[[User], dict[str, str]]
) -> dict[str, str]:
    return citizen_headers(create_user())


@pytest.fixture
def admin_auth(
    start_login: Callable[..., TokenPair], create_staff: Callable[..., StaffAccount]
) -> dict[str, str]:
    pair = start_login("staff", create_staff().id)
    return {"Authorization": f"Bearer {pair.access_token}"}


FUZZ_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _call(case, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error])


@schema.parametrize()
@FUZZ_SETTINGS
def test_anonymous_callers_never_get_a_server_error(case) -> None:  # type: ignore[no-untyped-def]
    _call(case, {})


@schema.parametrize()
@FUZZ_SETTINGS
def test_citizens_never_get_a_server_error(case, citizen_auth) -> None:  # type: ignore[no-untyped-def]
    _call(case, citizen_auth)


@schema.parametrize()
@FUZZ_SETTINGS
def test_administrators_never_get_a_server_error(case, admin_auth) -> None:  # type: ignore[no-untyped-def]
    _call(case, admin_auth)

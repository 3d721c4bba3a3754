"""The OpenAPI document is the API's contract: schemathesis with every check, for every role.

Each operation is called with generated valid and invalid data by an anonymous caller, a
citizen, an enterprise's agent and each staff role, and every built-in check runs: no 5xx,
status codes, content types, headers and bodies as documented (errors included), valid data
accepted, invalid data refused, auth not ignored, 405 with `Allow` for undocumented methods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy.orm import Session

from app.db import utcnow
from app.enterprises.models import BindingRole, RegistryEnterprise
from app.errors import TokenExpired
from app.identity.access_tokens import decode_access_token
from app.identity.models import StaffAccount, StaffRole, User
from app.identity.sessions import is_family_active
from app.organisation.models import Department, Hall
from tests.factories.identity import app_token_settings

# The test walks every operation of the API as every role; on a loaded 2-core machine that takes
# minutes.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture
def api_schema(app: Flask, session: Session):  # type: ignore[no-untyped-def]
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # Every text input refuses NUL (PostgreSQL cannot store it; README, API conventions), so
    # no generated "valid" string carries one.
    loaded.config.generation.update(allow_x00=False)
    # A query too long for a URL is answered 414, and a body over MAX_CONTENT_LENGTH 413
    # (a string far over its maxLength, say), as they should be, not 400/422.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413", "414"]
    # A hall screen's event stream never ends: its status, type and first event are what the
    # contract states, so reading stops there instead of after 10 s of keep-alives.
    loaded.config.max_stream_events = 1
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")

CONTRACT_SETTINGS = settings(
    max_examples=8,
    # The same examples on every run: a refusal found once is found again, and CI cannot go
    # red on a draw this machine never made.
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def headers_of(
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
    create_registry_enterprise: Callable[..., RegistryEnterprise],
    bind_enterprise: Callable[..., object],
    create_hall: Callable[..., Hall],
    create_department: Callable[..., Department],
    create_staff: Callable[..., StaffAccount],
    staff_headers: Callable[[StaffAccount], dict[str, str]],
    app: Flask,
    session: Session,
) -> Callable[[str], dict[str, str]]:
    """The Authorization header of a role (none for anonymous).

    One principal per role serves every example of the test, for as long as its login lives:
    making a fresh one for each of the thousands of examples (a staff account, its grants, a
    login family) was half the contract test's time. An example that ends the login (logout,
    a password change, roles changed) gets the next example a new principal."""
    made: dict[str, dict[str, str]] = {}

    def headers(kind: str) -> dict[str, str]:
        if kind == "anonymous":
            return {}
        cached = made.get(kind)
        if cached is None or not _still_signed_in(app, session, cached):
            cached = made[kind] = new_headers(kind)
        return cached

    def new_headers(kind: str) -> dict[str, str]:
        if kind == "citizen":
            return citizen_headers(create_user())
        if kind == "agent":
            agent = create_user()
            bind_enterprise(agent, create_registry_enterprise(), BindingRole.AGENT)
            return citizen_headers(agent)
        role = StaffRole(kind)
        if role.scope_kind == "hall":
            grant = (role, create_hall().id, None)
        elif role.scope_kind == "department":
            grant = (role, None, create_department().id)
        else:
            grant = (role, None, None)
        return staff_headers(create_staff(grants=[grant]))

    return headers


# How long a role's token must still live for the next example to use it.
TOKEN_MARGIN = dt.timedelta(minutes=1)


def _still_signed_in(app: Flask, session: Session, headers: dict[str, str]) -> bool:
    """The token outlives the next example, and its login family is live (logout, a password
    change, new roles and deactivation all end it).

    The contract runs longer than an access token lives in tests (5 minutes) on a slow
    machine: a token about to expire is replaced, not sent to expire mid-example."""
    token = headers["Authorization"].removeprefix("Bearer ")
    try:
        principal = decode_access_token(app_token_settings(app), token, now=utcnow() + TOKEN_MARGIN)
    except TokenExpired:
        return False
    return is_family_active(session, principal.family_id)


# Operations whose well-formed input may still be refused for a reason no schema can state:
# the answer is a 422 with its own code, and the check that every schema-valid input is
# accepted does not apply. Each says why; everything else about them is still checked.
SEMANTIC_REFUSALS = {
    "POST /api/v1/queue/scan": "hall codes are signed: only a code the server issued verifies",
    "POST /api/v1/queue/tickets": "the hall's code is signed: only a code the server issued"
    " verifies (reached once a category the case names exists)",
    "POST /api/v1/terminal/windows/{window_id}/identify": "personal codes are signed, 60 s",
    "POST /api/v1/terminal/windows/{window_id}/take": "personal codes are signed, 60 s",
    "POST /api/v1/terminal/windows/{window_id}/green-channel": "personal codes are signed",
    "POST /api/v1/terminal/appointments/check-in": "personal codes are signed, 60 s",
    # Typed on a phone: spaces and lower case are normalised away first, then the 18 characters
    # and the check digit are checked, each refusal with its own code (NAME_INVALID, ...).
    "POST /api/v1/me/realname": "the name's form and the ID number's check digit (GB 11643)",
    "POST /api/v1/me/enterprises": "the USCC's check digit (GB 32100)",
    "POST /api/v1/me/phone": "the code is a one-time token WeChat issued to the phone",
    "POST /api/v1/staff/accounts": "password strength; each role's scope (hall or department)",
    "PATCH /api/v1/staff/accounts/{staff_id}": "each role's scope: a hall for clerks and managers,"
    " a department for reviewers and officers, none for admins",
    "POST /api/v1/staff/accounts/{staff_id}/reset-password": "password strength",
    "POST /api/v1/staff/me/password": "password strength",
    "GET /api/v1/halls/{hall_id}/ratings/summary": "from <= to, at most a year",
    "GET /api/v1/review/applications/statistics": "from <= to, at most a year",
    "GET /api/v1/halls/{hall_id}/queue-stats": "from <= to, at most 31 days",
    "GET /api/v1/halls/{hall_id}/queue-stats.csv": "from <= to, at most 31 days",
    "POST /api/v1/policy-calculator": "the industry code must exist in GB/T 4754-2017",
    "PUT /api/v1/halls/{hall_id}/hours": "each interval opens before it closes, none overlap",
    "PUT /api/v1/halls/{hall_id}/special-days/{day}": "opens before it closes, unless closed",
    "POST /api/v1/staff/policies": "criteria and source_url are checked beyond their shape",
    "POST /api/v1/seals/{seal_id}/documents": "the data's keys and values are the template's",
    "PATCH /api/v1/staff/policies/{policy_id}": "criteria and source_url, as above",
    "POST /api/v1/matters": "the department must exist and the form must be a JSON Schema",
    "POST /api/v1/applications": "the form is checked against the chosen matter's own JSON"
    " Schema; the matter must exist and the enterprise be one the caller is bound to",
    "PUT /api/v1/matters/{code}/parameters/{name}": "the value has the parameter's own type",
    "POST /api/v1/applications/{number}/signature": "the handwriting's bytes must be a PNG image",
    "POST /api/v1/staff/scan-confirmations": "a console QR's code is random and single-use: only"
    " a code the console showed in the last two minutes is known",
}


def _check(case, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC_REFUSALS else []
    if _negation_never_sent(case, headers):
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers=headers, excluded_checks=excluded)


def _negation_never_sent(case, headers: dict[str, str]) -> bool:  # type: ignore[no-untyped-def]
    """A negative case whose every mutation the request does not carry, so it reaches the
    server valid: the Authorization header, which the role's own header replaces (CI once
    saw `GET /api/v1/staff/accounts` without it, sent with the admin's, answered 200 and
    flagged), or a query or header property beyond the documented ones, which schemathesis
    itself does not count as a negation alone (a query string also drops an empty list)."""
    meta = case.meta
    mutations = getattr(meta.phase.data, "mutations", None) if meta is not None else None
    if not mutations or not meta.generation.mode.is_negative:
        return False
    replaced = {name.lower() for name in headers}
    for mutation in mutations:
        # The header it broke: its name, or the names dropped from `required` (a list).
        named = mutation.parameter or mutation.original_value
        names = [named] if isinstance(named, str) else named
        replaced_by_caller = (
            mutation.parameter_location == ParameterLocation.HEADER
            and isinstance(names, list)
            and bool(names)
            and all(isinstance(name, str) and name.lower() in replaced for name in names)
        )
        extra_property = mutation.parameter_location in (
            ParameterLocation.QUERY,
            ParameterLocation.HEADER,
        ) and tuple(mutation.keywords) == ("additionalProperties",)
        if not (replaced_by_caller or extra_property):
            return False
    return True


# Every role sends every generated case. Generating the cases is most of the cost (the coverage
# phase's boundary values are the same whoever sends them, and were once built eight times over,
# one test per role); a case that fails names the role that sent it.
ROLES = ("anonymous", "citizen", "agent", *StaffRole)


@schema.parametrize()
@CONTRACT_SETTINGS
def test_every_role_gets_what_the_contract_says(case, headers_of) -> None:  # type: ignore[no-untyped-def]
    for role in ROLES:
        try:
            _check(case, headers_of(role))
        except Exception as failure:
            failure.add_note(f"sent as: {role}")
            raise

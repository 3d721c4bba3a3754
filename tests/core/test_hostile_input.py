"""Input no client should send, and faults no client causes: a clear JSON answer, never a 500."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import get_session
from app.identity.models import StaffAccount, User
from tests.core.test_http_errors import assert_error_shape

LOGIN = "/api/v1/auth/wechat/login"


def _post_raw(client: FlaskClient, path: str, body: str, **kw: Any):  # type: ignore[no-untyped-def]
    return client.post(path, data=body, content_type="application/json", **kw)


@pytest.mark.parametrize("depth", [33, 100_000])
def test_json_nested_too_deep_is_400_not_a_recursion_error(client: FlaskClient, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = _post_raw(client, LOGIN, body)
    assert_error_shape(response, 400, "MALFORMED_JSON")


def test_a_lone_surrogate_is_refused_as_422(client: FlaskClient) -> None:
    response = _post_raw(client, LOGIN, '{"code": "abc\\ud800def"}')
    assert_error_shape(response, 422, "VALIDATION_FAILED")
    key = _post_raw(client, LOGIN, '{"\\udfff": "x"}')
    assert_error_shape(key, 422, "VALIDATION_FAILED")


@pytest.mark.parametrize("number", ["1e400", "-1e400", str(2**63), "9" * 5000])
def test_numbers_no_field_can_hold_are_400(client: FlaskClient, number: str) -> None:
    response = _post_raw(client, LOGIN, '{"code": ' + number + "}")
    assert_error_shape(response, 400, "MALFORMED_JSON")


def test_a_page_beyond_any_list_is_422(
    client: FlaskClient, staff_headers: Callable[[StaffAccount], dict[str, str]], create_staff: Any
) -> None:
    headers = staff_headers(create_staff())
    for query in ({"page": 2**70}, {"page_size": 101}, {"hall_id": 2**70}, {"page": 0}):
        response = client.get("/api/v1/staff/accounts", query_string=query, headers=headers)
        assert_error_shape(response, 422, "VALIDATION_FAILED")


def test_a_chunked_body_over_the_limit_is_413(app: Flask, client: FlaskClient) -> None:
    big = json.dumps({"code": "x" * (2 * 1024 * 1024)}).encode()
    # No Content-Length: a chunked upload, its end told by the server (gunicorn sets
    # wsgi.input_terminated once it has decoded the chunks).
    response = client.post(
        LOGIN,
        input_stream=io.BytesIO(big),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_url_over_4_kb_is_a_json_414(client: FlaskClient) -> None:
    response = client.get("/api/v1/halls?q=" + "x" * 5000)
    assert_error_shape(response, 414, "URI_TOO_LONG")


def test_405_names_the_allowed_methods_in_the_allow_header(client: FlaskClient) -> None:
    response = client.delete("/api/v1/halls")
    assert_error_shape(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_a_protected_operation_says_401_before_it_says_anything_of_its_fields(
    client: FlaskClient, create_user: Callable[..., User], citizen_headers: Any
) -> None:
    anonymous = client.post("/api/v1/queue/tickets", json={"nonsense": 1})
    assert_error_shape(anonymous, 401, "UNAUTHENTICATED")
    assert "nonsense" not in anonymous.get_data(as_text=True)
    citizen = citizen_headers(create_user())
    wrong_role = client.post(
        "/api/v1/terminal/windows/1/call-next", json={"nonsense": 1}, headers=citizen
    )
    assert_error_shape(wrong_role, 403, "FORBIDDEN")
    # The right caller gets the field errors.
    mine = client.post("/api/v1/queue/tickets", json={"nonsense": 1}, headers=citizen)
    assert_error_shape(mine, 422, "VALIDATION_FAILED")


def test_public_operations_ask_for_no_token_in_the_openapi(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["paths"]["/api/v1/halls"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/screen/halls/{hall_id}/board"]["get"]["security"] == []
    assert "security" not in spec["paths"]["/api/v1/queue/tickets"]["post"]  # the global bearer
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["code"]["type"] == "string"
    assert set(error["required"]) == {"code", "message", "details"}


# -- faults ------------------------------------------------------------------------------------


def _fresh_app(database_url: str) -> Flask:
    # Routes cannot be added to an app that has served requests: each fault gets its own.
    from app import create_app

    return create_app("testing", DATABASE_URL=database_url, JOB_RUNNER="manual")


def test_the_database_connection_dying_mid_request_is_a_json_503(
    app: Flask, database_url: str
) -> None:
    fresh = _fresh_app(database_url)

    @fresh.get("/__connection_dies")
    def connection_dies() -> str:
        session = get_session()
        session.execute(text("SELECT 1"))
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        else:
            session.connection().connection.dbapi_connection.close()  # type: ignore[union-attr]
        session.execute(text("SELECT 1"))
        return "unreachable"

    client = fresh.test_client()
    response = client.get("/__connection_dies")
    assert_error_shape(response, 503, "DATABASE_UNAVAILABLE")
    assert response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 200  # the pool let the dead connection go


def test_a_failing_rollback_at_teardown_does_not_replace_the_answer(
    app: Flask, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = _fresh_app(database_url)

    @fresh.get("/__teardown_fails")
    def teardown_fails() -> dict[str, str]:
        get_session().execute(text("SELECT 1"))
        return {"status": "answered"}

    def close_fails(self: Session) -> None:
        raise OperationalError("ROLLBACK", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Session, "close", close_fails)
    response = fresh.test_client().get("/__teardown_fails")
    assert response.status_code == 200 and response.get_json() == {"status": "answered"}


# -- every operation, hostile bodies -----------------------------------------------------------

_leaf = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(categories=["Cs", "Cc", "Lo"]), max_size=8),
    st.booleans(),
    st.none(),
)
_hostile = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=12,
) | st.integers(min_value=20, max_value=200).map(
    lambda depth: {"a": json.loads("[" * depth + "]" * depth)}
)


def _write_operations(app: Flask) -> list[tuple[str, str]]:
    operations = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x")
        if rule.rule.endswith("/auth/logout"):
            continue  # it would end the callers' logins for every later example
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH"}):
            operations.append((method, path))
    return operations


def test_hostile_json_to_every_operation_never_gets_a_server_error(
    app: Flask,
    client: FlaskClient,
    create_user: Callable[..., User],
    citizen_headers: Any,
    create_staff: Any,
    staff_headers: Any,
) -> None:
    callers = [{}, citizen_headers(create_user()), staff_headers(create_staff())]
    operations = _write_operations(app)
    assert len(operations) > 40

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        operation=st.sampled_from(operations),
        caller=st.sampled_from(callers),
        value=_hostile,
    )
    def post_hostile(operation: tuple[str, str], caller: dict[str, str], value: Any) -> None:
        method, path = operation
        body = json.dumps(value)  # ASCII: lone surrogates travel as \\udxxx escapes
        response = client.open(
            path, method=method, data=body, content_type="application/json", headers=caller
        )
        assert response.status_code < 500, (method, path, body[:200], response.get_data()[:300])
        if response.status_code >= 400:
            assert set(response.get_json()) == {"code", "message", "details"}

    post_hostile()

"""Every 4xx/5xx answers with the one JSON error shape, never HTML or a traceback."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient


def assert_error_shape(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert body["message"] and all(ord(ch) < 0x10000 for ch in body["message"])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), "message must be Chinese"
    return body  # type: ignore[no-any-return]


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error_shape(client.get("/api/v1/no-such-thing"), 404, "NOT_FOUND")


def test_wrong_method_is_json_405_with_allowed_methods(client: FlaskClient) -> None:
    body = assert_error_shape(client.get("/api/v1/auth/wechat/login"), 405, "METHOD_NOT_ALLOWED")
    assert "POST" in body["details"]["allowed"]


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/wechat/login", data="{not json", content_type="application/json"
    )
    assert_error_shape(response, 400, "MALFORMED_JSON")


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/wechat/login", data="code=abc", content_type="text/plain")
    assert_error_shape(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_unknown_and_invalid_fields_are_422_with_field_errors(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/wechat/login", json={"code": 42, "extra": "x"})
    body = assert_error_shape(response, 422, "VALIDATION_FAILED")
    fields = body["details"]["fields"]["json"]
    assert "extra" in fields and "code" in fields


def test_body_over_the_limit_is_413(app: Flask, client: FlaskClient) -> None:
    big = json.dumps({"code": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)})
    response = client.post("/api/v1/auth/wechat/login", data=big, content_type="application/json")
    assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")


def test_unexpected_error_is_json_500_without_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A fresh app: routes cannot be added to one that has already served requests.
    from app import create_app

    fresh = create_app("testing", DATABASE_URL=f"sqlite:///{tmp_path / 'boom.db'}")

    @fresh.get("/__boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = fresh.test_client().get("/__boom")
    body = assert_error_shape(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in json.dumps(body)
    assert "Traceback" not in response.get_data(as_text=True)


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["database"] == "ok"


def test_readyz_reports_unreachable_redis(app: Flask, client: FlaskClient) -> None:
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        app.config["REDIS_URL"] = ""
    body = assert_error_shape(response, 503, "NOT_READY")
    assert body["details"]["checks"]["redis"] == "unavailable"


def test_openapi_document_and_docs_are_served(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"] == "禺好办 API"
    assert any(path.startswith("/api/v1/") for path in spec["paths"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "/api/docs-assets/swagger-ui-bundle.js" in docs.get_data(as_text=True)
    assert client.get("/api/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_request_id_is_echoed_and_logged_without_personal_data(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="yuhaoban.access")
    response = client.get("/healthz", headers={"X-Request-ID": "req-abcdef123"})
    assert response.headers["X-Request-ID"] == "req-abcdef123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32


def test_nul_characters_are_refused_before_reaching_the_database(client: FlaskClient) -> None:
    # PostgreSQL text cannot hold NUL; it must be a 422, never a 500 from the driver.
    body = assert_error_shape(
        client.post("/api/v1/staff/auth/login", json={"username": "a\u0000b", "password": "x"}),
        422,
        "VALIDATION_FAILED",
    )
    assert body["details"]["fields"] == {"json": ["NUL"]}
    query = client.get("/api/v1/halls?page=1\u0000")
    assert_error_shape(query, 422, "VALIDATION_FAILED")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/staff/accounts/{id}",
        "/api/v1/halls/{id}",
        "/api/v1/halls/{id}/queue-stats",
        "/api/v1/queue/tickets/{id}",
        "/api/v1/me/appointments/{id}",
        "/api/v1/me/tickets/{id}/rating",
    ],
)
def test_ids_beyond_the_database_range_are_404_not_500(client: FlaskClient, path: str) -> None:
    # Every <int:...> in a URL is bounded by one converter (blueprints/http.py), none by hand.
    response = client.get(path.format(id=2**63))
    assert_error_shape(response, 404, "NOT_FOUND")


def test_readyz_warns_of_a_year_without_its_holiday_schedule(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import calendar

    monkeypatch.setattr(calendar, "unknown_years", lambda years: [])
    assert client.get("/readyz").get_json()["warnings"] == []
    monkeypatch.setattr(calendar, "unknown_years", lambda years: [max(years)])
    ready = client.get("/readyz")

    assert ready.status_code == 200  # still serving: the operator is told, not the traffic cut
    (warning,) = ready.get_json()["warnings"]
    assert "节假日安排未载入" in warning

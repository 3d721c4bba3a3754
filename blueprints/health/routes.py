"""Liveness and readiness probes for the process manager and load balancer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import calendar
from app.db import get_db, utcnow
from blueprints.authz import public

blp = Blueprint("health", __name__)


@blp.get("/healthz")
@public
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


@blp.get("/readyz")
@public
def readyz() -> Response:
    """The database, and Redis when configured, answer."""
    checks: dict[str, str] = {}
    try:
        engine = get_db().engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError:
        checks["database"] = "unavailable"
    redis_url = current_app.config["REDIS_URL"]
    if redis_url:
        try:
            Redis.from_url(redis_url, socket_timeout=1).ping()
            checks["redis"] = "ok"
        except RedisError:
            checks["redis"] = "unavailable"
    ready = all(state == "ok" for state in checks.values())
    if not ready:
        response = jsonify(
            {"code": "NOT_READY", "message": "服务依赖暂不可用", "details": {"checks": checks}}
        )
        response.status_code = 503
        return response
    # Not a reason to stop serving, but deadlines and opening days would ignore the holidays:
    # the operator enters the published schedule in data/calendar/overrides.json.
    this_year = calendar.local_day(utcnow()).year
    unknown = calendar.unknown_years([this_year, this_year + 1])
    warnings = [f"节假日安排未载入：{year} 年" for year in unknown]
    return jsonify({"status": "ready", "checks": checks, "warnings": warnings})

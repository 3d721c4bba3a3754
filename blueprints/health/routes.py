"""Liveness and readiness probes for the process manager and load balancer, and the metrics
Prometheus scrapes (`blueprints.health.scraper` says who may)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import calendar
from app.db import get_db, get_session, utcnow
from app.observability import exposition
from app.observability.gauges import DatabaseGauges
from blueprints.authz import public
from blueprints.errors import error_response
from blueprints.health.scraper import scraper_only

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
        return error_response(503, "NOT_READY", "服务依赖暂不可用", {"checks": checks})
    # Not a reason to stop serving, but deadlines and opening days would ignore the days in
    # lieu and make-up workdays (the law's own holidays are kept, `calendar.statutory_holidays`):
    # the operator enters the published schedule in data/calendar/overrides.json.
    this_year = calendar.local_day(utcnow()).year
    unknown = calendar.unknown_years([this_year, this_year + 1])
    warnings = [f"节假日安排未载入：{year} 年" for year in unknown]
    return jsonify({"status": "ready", "checks": checks, "warnings": warnings})


@blp.get("/metrics")
@scraper_only
def metrics() -> Response:
    """Every process's counters and histograms, and the gauges read from the database now."""
    body, content_type = exposition.render(DatabaseGauges(get_session(), now=utcnow()))
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response

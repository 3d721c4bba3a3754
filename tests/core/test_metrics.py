"""GET /metrics: who may scrape it, and what it counts (requests, errors, WeChat, gauges)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from app.db import utcnow
from app.identity.models import User
from app.integrations.wechat import get_wechat
from app.notify import outbox
from app.notify.models import NotificationOutbox
from app.observability.gauges import DatabaseGauges
from app.queueing.demo import QueueHall
from app.queueing.models import Ticket
from wechat.errors import InvalidCode

TOKEN = "metrics-token-" + "0123456789abcdef" * 2
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_metrics_token(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the environment says, these tests start without a token; some set one."""
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "")


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient) -> Samples:
    """What a scraper on this machine reads (the app has no token unless a test sets one)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return _parse(response.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- who may scrape ------------------------------------------------------------------------


def test_with_a_token_only_its_bearer_may_scrape(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
    other_scheme = client.get("/metrics", headers={"Authorization": "Basic " + TOKEN})
    served = client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN})

    for refused in (missing, wrong, other_scheme):
        assert refused.status_code == 401
        body = refused.get_json()
        assert body["code"] == "UNAUTHENTICATED" and body["message"]
        assert "yuhaoban_" not in refused.get_data(as_text=True)
    assert served.status_code == 200
    assert "yuhaoban_http_request_duration_seconds" in served.get_data(as_text=True)


def test_with_a_token_even_this_machine_needs_it(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 401


def test_without_a_token_only_this_machine_may_scrape(client: FlaskClient) -> None:
    local = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    local_v6 = client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    # A balancer on this machine connects from loopback on behalf of anyone.
    proxied = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )

    assert local.status_code == 200 and local_v6.status_code == 200
    for refused in (remote, proxied):
        assert refused.status_code == 404
        assert refused.get_json()["code"] == "NOT_FOUND"


def test_production_refuses_to_start_without_a_metrics_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from config import ConfigError, load_config
    from tests.core.test_config import SAFE_PRODUCTION

    for name, setting in SAFE_PRODUCTION.items():
        monkeypatch.setenv(name, setting)
    load_config("production")  # the safe settings carry one
    monkeypatch.setenv("METRICS_TOKEN", "short")
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load_config("production")
    monkeypatch.delenv("METRICS_TOKEN")
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load_config("production")


# -- what is counted -----------------------------------------------------------------------

HALL_ROUTE = "/api/v1/halls/<int:hall_id>"


def test_latency_is_labelled_by_route_template_never_by_path(client: FlaskClient) -> None:
    before = scrape(client)
    assert client.get("/api/v1/halls/987654").status_code == 404
    assert client.get("/api/v1/halls/987655").status_code == 404
    after = scrape(client)

    name = "yuhaoban_http_request_duration_seconds_count"
    labels = {"route": HALL_ROUTE, "method": "GET", "status": "404"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2
    routes = {dict(key)["route"] for (metric, key) in after if metric == name}
    assert not any("987654" in route for route in routes)
    assert HALL_ROUTE in routes


def test_a_path_no_route_matches_is_one_series(client: FlaskClient) -> None:
    before = scrape(client)
    client.get("/no/such/page/123")
    client.get("/no/such/page/456")
    after = scrape(client)

    name = "yuhaoban_http_request_duration_seconds_count"
    labels = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def test_errors_are_counted_by_their_json_code(client: FlaskClient) -> None:
    before = scrape(client)
    missing = client.get("/api/v1/halls/987654")
    invalid = client.post("/api/v1/auth/wechat/login", json={"code": 42, "extra": "x"})
    after = scrape(client)

    assert missing.status_code == 404 and invalid.status_code == 422
    name = "yuhaoban_http_errors_total"
    missing_code = missing.get_json()["code"]
    grew = {
        (code, status): value(after, name, code=code, status=status)
        - value(before, name, code=code, status=status)
        for code, status in ((missing_code, "404"), ("VALIDATION_FAILED", "422"))
    }
    assert grew == {(missing_code, "404"): 1, ("VALIDATION_FAILED", "422"): 1}


def test_a_wechat_errcode_is_counted_with_its_api(app: Flask, client: FlaskClient) -> None:
    before = scrape(client)
    with pytest.raises(InvalidCode):
        get_wechat(app).code_to_session("a-code-wechat-never-issued")
    after = scrape(client)

    name = "yuhaoban_wechat_call_duration_seconds_count"
    labels = {"api": "/sns/jscode2session", "errcode": "40029"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_an_unknown_wechat_errcode_is_bounded_to_other() -> None:
    from wechat.errors import TransportError, WeChatError, errcode_label, error_from_response

    assert errcode_label(None) == "0"
    assert errcode_label(error_from_response(43101, "refused")) == "43101"
    assert errcode_label(error_from_response(99999, "new to us")) == "other"
    assert errcode_label(TransportError("timeout")) == "transport"
    assert errcode_label(WeChatError(None, "HTTP 404")) == "bad_answer"


# -- gauges read at scrape time ------------------------------------------------------------

FRIDAY_10AM = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)  # Friday 10:00 in Panyu


def _gauges(session: Session, now: dt.datetime) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in DatabaseGauges(session, now=now).collect()
        for sample in family.samples
    }


def test_outbox_depth_counts_pending_due_and_leased_rows(
    session: Session,
    create_user: Callable[..., User],
    enqueue_notification: Callable[..., NotificationOutbox],
) -> None:
    before = _gauges(session, utcnow())
    user = create_user()
    # Allowed, so the rows wait for the sender (without it they are settled as written).
    outbox.record_subscription_result(session, user.id, {"queue_called": "accept"}, utcnow())
    enqueue_notification(user)  # due now
    enqueue_notification(user)
    enqueue_notification(user, now=utcnow() + dt.timedelta(hours=1))  # pending, not yet due
    session.flush()
    after = _gauges(session, utcnow())

    grew = {
        state: value(after, "yuhaoban_outbox_rows", state=state)
        - value(before, "yuhaoban_outbox_rows", state=state)
        for state in ("pending", "due", "sending")
    }
    assert grew == {"pending": 3, "due": 2, "sending": 0}
    assert value(after, "yuhaoban_metrics_database_up") == 1


def test_queue_length_per_hall_counts_its_waiting_tickets(
    session: Session,
    create_queue_hall: Callable[..., QueueHall],
    create_user: Callable[..., User],
    take_ticket: Callable[..., Ticket],
) -> None:
    busy, quiet = create_queue_hall(), create_queue_hall()
    for _ in range(3):
        take_ticket(create_user(), busy.categories["A"], now=FRIDAY_10AM)
    take_ticket(create_user(), busy.categories["B"], now=FRIDAY_10AM)
    session.flush()

    gauges = _gauges(session, FRIDAY_10AM + dt.timedelta(minutes=5))
    next_day = _gauges(session, FRIDAY_10AM + dt.timedelta(days=1))

    name = "yuhaoban_queue_waiting_tickets"
    assert value(gauges, name, hall=busy.hall.code) == 4
    assert (name, frozenset({("hall", quiet.hall.code)})) in gauges
    assert value(gauges, name, hall=quiet.hall.code) == 0
    assert value(next_day, name, hall=busy.hall.code) == 0


def test_the_scrape_serves_the_database_gauges(
    client: FlaskClient,
    session: Session,
    create_user: Callable[..., User],
    enqueue_notification: Callable[..., NotificationOutbox],
) -> None:
    before = scrape(client)
    user = create_user()
    outbox.record_subscription_result(session, user.id, {"queue_called": "accept"}, utcnow())
    enqueue_notification(user)
    after = scrape(client)
    assert value(after, "yuhaoban_metrics_database_up") == 1
    grew = value(after, "yuhaoban_outbox_rows", state="pending") - value(
        before, "yuhaoban_outbox_rows", state="pending"
    )
    assert grew == 1


# -- several processes ---------------------------------------------------------------------

_COUNT_IN_A_PROCESS = """
from app.observability.metrics import HTTP_REQUEST_SECONDS, count_error
count_error(404, "HALL_NOT_FOUND")
HTTP_REQUEST_SECONDS.labels("/api/v1/halls/<int:hall_id>", "GET", "404").observe(0.02)
"""

_SCRAPE_IN_A_PROCESS = """
import json
from prometheus_client.parser import text_string_to_metric_families
from app.observability.exposition import render
body, _ = render()
print(json.dumps([
    [s.name, s.labels, s.value]
    for f in text_string_to_metric_families(body.decode())
    for s in f.samples
]))
"""


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_scrape_adds_up_every_process_sharing_the_multiprocess_dir(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    _python(_COUNT_IN_A_PROCESS, env)
    _python(_COUNT_IN_A_PROCESS, env)  # another worker (another pid) of the same service

    samples = {
        (name, frozenset(labels.items())): sample
        for name, labels, sample in json.loads(_python(_SCRAPE_IN_A_PROCESS, env))
    }

    assert value(samples, "yuhaoban_http_errors_total", code="HALL_NOT_FOUND", status="404") == 2
    histogram = {"route": HALL_ROUTE, "method": "GET", "status": "404"}
    assert value(samples, "yuhaoban_http_request_duration_seconds_count", **histogram) == 2
    assert len(list(tmp_path.iterdir())) >= 2  # one file per process and kind


def test_without_the_dir_a_process_serves_only_its_own_metrics(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    _python(_COUNT_IN_A_PROCESS, env)
    samples = {
        (name, frozenset(labels.items())): sample
        for name, labels, sample in json.loads(_python(_SCRAPE_IN_A_PROCESS, env))
    }
    assert value(samples, "yuhaoban_http_errors_total", code="HALL_NOT_FOUND", status="404") == 0
    assert value(samples, "process_cpu_seconds_total") > 0  # the default registry's own

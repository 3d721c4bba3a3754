"""The counters and histograms this service exports, and the one call that records each.

Label values are bounded, so the number of series stays small whatever clients send: a route
is its template (`/api/v1/halls/<int:hall_id>`), never the path; an error is its stable code;
a WeChat call is the API path the client names in its code and an errcode it knows.

Recording costs a dictionary lookup and an increment under prometheus_client's own
per-process lock (in multiprocess mode, a write to this process's memory-mapped file): no
database, no network, no lock shared between processes.
"""

from __future__ import annotations

import time

from flask import Response, g, request
from prometheus_client import Counter, Histogram

NAMESPACE = "yuhaoban"
# Seconds; 0.3 is the rush-hour p99 target of issue 14, so it is a bucket boundary.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"  # 404 and 405: no route template to name
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to the response's first byte, by route template, method and status.",
    ["route", "method", "status"],
    namespace=NAMESPACE,
    buckets=LATENCY_BUCKETS,
)
HTTP_ERRORS = Counter(
    "http_errors",
    "Error responses by their JSON error code and status.",
    ["code", "status"],
    namespace=NAMESPACE,
)
TASK_OUTCOMES = Counter(
    "task_outcomes",
    "Background work by task and outcome (notification deliveries, policy pushes, sweeps).",
    ["task", "outcome"],
    namespace=NAMESPACE,
)
SWEEP_ROWS = Counter(
    "sweep_rows",
    "Rows changed by the periodic sweeps (tickets expired, appointments missed, ...).",
    ["sweep"],
    namespace=NAMESPACE,
)
WECHAT_CALL_SECONDS = Histogram(
    "wechat_call_duration_seconds",
    "WeChat API calls (each HTTP attempt) by API path and errcode (0: success).",
    ["api", "errcode"],
    namespace=NAMESPACE,
    buckets=LATENCY_BUCKETS,
)


def observe_request(response: Response) -> Response:
    """Record this request's latency (an `after_request` hook).

    Timed from `g.request_started`, which `app.logs` sets before any other hook runs, so a
    request refused by an early hook (401, 415) is timed too.
    """
    started: float | None = g.get("request_started")
    if started is not None:
        rule = request.url_rule
        method = request.method if request.method in _METHODS else "OTHER"
        HTTP_REQUEST_SECONDS.labels(
            rule.rule if rule is not None else UNMATCHED_ROUTE, method, str(response.status_code)
        ).observe(time.perf_counter() - started)
    return response


def count_error(status: int, code: str) -> None:
    """An error response with this JSON `code` was built."""
    HTTP_ERRORS.labels(code, str(status)).inc()


def count_task(task: str, outcome: str, amount: int = 1) -> None:
    """Background work of `task` ended with `outcome` (`amount` times)."""
    if amount:
        TASK_OUTCOMES.labels(task, outcome).inc(amount)


def count_sweep_rows(sweep: str, rows: int) -> None:
    """A periodic sweep changed `rows` rows."""
    if rows:
        SWEEP_ROWS.labels(sweep).inc(rows)


def observe_wechat_call(api: str, errcode: str, seconds: float) -> None:
    """One HTTP call to WeChat (`wechat.client.CallObserver`)."""
    WECHAT_CALL_SECONDS.labels(api, errcode).observe(seconds)

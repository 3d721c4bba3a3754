"""Prometheus metrics of the web processes and the job workers (exported at GET /metrics).

- `metrics`: the counters and histograms, and the one call that records each (requests,
  errors, job outcomes, WeChat calls);
- `gauges`: what is read from the database when Prometheus scrapes (outbox depth, tickets
  waiting per hall), never counted on the request path;
- `exposition`: the scrape itself, across gunicorn's and Dramatiq's processes when
  `PROMETHEUS_MULTIPROC_DIR` names a shared directory.

JSON logs with request ids are `app.logs`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Time every request of `app` by its route template."""
    from app.observability.metrics import observe_request

    app.after_request(observe_request)

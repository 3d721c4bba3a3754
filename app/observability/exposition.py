"""One scrape: every process's counters and histograms, then the database gauges.

Under gunicorn (several workers) and Dramatiq (several processes), each process counts in its
own memory. With `PROMETHEUS_MULTIPROC_DIR` set by the launcher, before any process imports
prometheus_client, each writes its values to files in that directory and the scrape merges
them (prometheus_client's multiprocess mode); gunicorn's `child_exit` hook
(gunicorn.conf.py) marks a worker dead when it exits. Without it, one process serves its own
default registry (`make run`, tests).
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def render(*collectors: Collector) -> tuple[bytes, str]:
    """The text exposition of this service's metrics plus `collectors`, and its content type."""
    # A registry per scrape: the per-scrape collectors (a database session) are not kept, and
    # in multiprocess mode the merged files must not meet this process's own copies.
    registry = CollectorRegistry()
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST

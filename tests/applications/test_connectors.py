"""Shared-data connectors: the embedded tables answer the rules' facts; the HTTP connector
speaks the platform's signed JSON with a timeout, and every failure is a typed
ConnectorUnavailable that `gather` turns into "unavailable", never into facts."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from app.shared_data.catalogue import CONNECTORS
from app.shared_data.connectors import (
    ConnectorUnavailable,
    HttpConnector,
    LookupRequest,
    embedded_connectors,
    gather,
)
from tests.support.http import served


@contextmanager
def _platform(answer: Any, *, delay: float = 0.0, status: int = 200) -> Iterator[str]:
    """A stand-in data-sharing platform answering every lookup with `answer` after `delay`."""

    @Request.application
    def respond(request: Request) -> Response:
        time.sleep(delay)
        return Response(json.dumps(answer), status=status, mimetype="application/json")

    with served(respond, poll_interval=0.05) as base_url:
        yield base_url


def slow_platform(delay: float) -> Any:
    return _platform({"facts": {}}, delay=delay)


def _connector(name: str, base: str, timeout: float = 1.0) -> HttpConnector:
    return HttpConnector(
        CONNECTORS[name], requests.Session(), base_url=base, app_id="t", secret="s", timeout=timeout
    )


REQUEST = LookupRequest(
    {"longitude": 113.338, "latitude": 22.905}, "91440113MA5ABCDEF0", dt.date(2026, 6, 1)
)


def test_embedded_lookups_answer_from_the_demo_tables(session, district):
    connectors = embedded_connectors(session)
    facts, unavailable = gather(connectors, ["advertising_zones", "drainage_network"], REQUEST)
    assert unavailable == []
    assert facts["site.in_restricted_area"] is True
    assert facts["site.restricted_area"] == "沙湾古镇历史文化街区"
    assert facts["site.in_network_coverage"] is True
    outside = LookupRequest({"longitude": 113.65, "latitude": 22.85}, None, dt.date(2026, 6, 1))
    facts, _ = gather(
        connectors, ["advertising_zones", "drainage_network", "key_dischargers"], outside
    )
    assert facts["site.in_restricted_area"] is False and facts["site.in_network_coverage"] is False
    assert facts["discharger.is_key"] is None  # no enterprise: not applicable, unknown


def test_the_http_connector_reads_typed_facts():
    answer = {"facts": {"site.in_restricted_area": False, "site.restricted_area": None}}
    with _platform(answer) as base:
        facts = _connector("advertising_zones", base).lookup(REQUEST)
    assert facts == {"site.in_restricted_area": False, "site.restricted_area": None}


@pytest.mark.parametrize(
    ("answer", "delay", "status"),
    [
        ({"facts": {}}, 1.0, 200),  # too slow
        ({"facts": {"site.in_restricted_area": "no"}}, 0.0, 200),  # wrong type
        ({"facts": {"site.in_restricted_area": 0}}, 0.0, 200),  # a number is no boolean
        ({"error": "down"}, 0.0, 503),
        (["not", "an", "object"], 0.0, 200),
    ],
)
def test_every_http_failure_is_typed_and_gathered_as_unavailable(answer, delay, status):
    with _platform(answer, delay=delay, status=status) as base:
        connector = _connector("advertising_zones", base, timeout=0.2)
        with pytest.raises(ConnectorUnavailable):
            connector.lookup(REQUEST)
        facts, unavailable = gather(
            {"advertising_zones": connector}, ["advertising_zones"], REQUEST
        )
    assert facts == {} and unavailable == ["advertising_zones"]

"""Screen listeners come and go without leaking: each one unregisters however it ends."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.organisation.models import Hall
from app.queueing.events import LocalBroker


def test_a_listener_dropped_before_it_was_read_is_forgotten() -> None:
    broker = LocalBroker()
    listener = broker.listen(7, timeout=0.01)
    assert broker.listener_count(7) == 1

    del listener
    gc.collect()

    assert broker.listener_count(7) == 0
    broker.publish(7, {"text": "请A001号到1号窗口办理"})  # reaches nobody, queues nowhere


def test_a_closed_listener_stops_and_is_forgotten() -> None:
    broker = LocalBroker()
    listener = broker.listen(7, timeout=0.01)
    broker.publish(7, {"display": "A001"})
    assert next(listener) == {"display": "A001"}
    assert next(listener) is None  # silence: the stream sends a keep-alive

    listener.close()

    assert broker.listener_count(7) == 0
    with pytest.raises(StopIteration):
        next(listener)


def test_a_head_request_for_the_stream_leaves_no_listener_behind(
    app: Flask, client: FlaskClient, create_hall: Callable[..., Hall]
) -> None:
    # A HEAD answer has no body, so the stream is never iterated: before listeners removed
    # themselves when dropped, each HEAD (an uptime probe, say) left one queue behind for good.
    hall = create_hall()
    answer = client.head(f"/api/v1/screen/halls/{hall.id}/events")
    assert answer.status_code == 200
    answer.close()
    gc.collect()

    assert app.extensions["queueing"].events.listener_count(hall.id) == 0

"""Scan-to-queue: taking numbers, calling them at windows, the hall screen and wait forecasts."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from app.extensions import current_flask_app
from app.queueing.events import LocalBroker, make_broker
from app.queueing.forecast import ForecastCache
from app.queueing.settings import QueueSettings, from_config


@dataclass
class QueueRuntime:
    """What the queue keeps as long as the app lives, built once by `init_app`."""

    settings: QueueSettings
    forecasts: ForecastCache  # each hall's wait forecast, kept QUEUE_FORECAST_MAX_AGE_SECONDS
    events: LocalBroker  # the hall-screen broker (Redis-backed when REDIS_URL is set)


def init_app(app: Flask) -> None:
    app.extensions["queueing"] = QueueRuntime(
        settings=from_config(app.config),
        forecasts=ForecastCache(app.config["QUEUE_FORECAST_MAX_AGE_SECONDS"]),
        events=make_broker(
            app.config["REDIS_URL"], app.config.get("DRAMATIQ_NAMESPACE", "yuhaoban")
        ),
    )


def runtime() -> QueueRuntime:
    """The current app's queue runtime."""
    found: QueueRuntime = current_flask_app().extensions["queueing"]
    return found

"""The shared-data connectors the app's rules read: embedded tables or the platform's HTTP API,
by `SHARED_DATA_SERVICE_BASE`."""

from __future__ import annotations

import threading

import requests
from sqlalchemy.orm import Session

from app.extensions import current_flask_app
from app.shared_data.connectors import (
    LOCAL_ONLY,
    Connector,
    embedded_connectors,
    http_connectors,
)

_lock = threading.Lock()


def get_connectors(session: Session) -> dict[str, Connector]:
    """The connectors for one unit of work (embedded ones read through `session`)."""
    app = current_flask_app()
    config = app.config
    if config["SHARED_DATA_SERVICE_BASE"] == "embedded":
        return embedded_connectors(session)
    connectors = app.extensions.get("shared_data")
    if connectors is None:
        with _lock:
            connectors = app.extensions.get("shared_data")
            if connectors is None:
                http = requests.Session()
                http.trust_env = False
                connectors = http_connectors(
                    http,
                    base_url=config["SHARED_DATA_SERVICE_BASE"],
                    app_id=config["SHARED_DATA_SERVICE_APP_ID"],
                    secret=config["SHARED_DATA_SERVICE_SECRET"],
                    timeout=config["SHARED_DATA_TIMEOUT_SECONDS"],
                )
                app.extensions["shared_data"] = connectors
    local = embedded_connectors(session)
    return {**connectors, **{name: local[name] for name in LOCAL_ONLY}}

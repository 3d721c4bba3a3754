"""External systems as the core sees them, built once per app from its settings."""

from __future__ import annotations

from flask import Flask

from app.integrations.verification import init_verification
from app.integrations.wechat import init_wechat


def init_app(app: Flask) -> None:
    init_wechat(app)
    init_verification(app)

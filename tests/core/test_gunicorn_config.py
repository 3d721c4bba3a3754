"""gunicorn's settings file: its JSON logging writes no access line unless one is asked for.

The app logs every request itself (app/logs.py). gunicorn counts access logging as enabled
whenever a logging config is given, and ours is (its own messages as JSON lines): every request
was logged twice, once by gunicorn to stdout, and built the access line's atoms (~4 % of a
take's CPU in the queue bench's profile).
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[2]


def _logger(monkeypatch: pytest.MonkeyPatch, access_log: str | None) -> Any:
    if access_log is None:
        monkeypatch.delenv("GUNICORN_ACCESS_LOG", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_ACCESS_LOG", access_log)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    config = Config()
    for name, value in settings.items():
        if name in config.settings:
            config.set(name, value)
    return config.logger_class(config)


def test_no_access_line_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = _logger(monkeypatch, None)
    assert not logger.access_log_enabled


def test_gunicorn_access_log_brings_the_line_back(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = _logger(monkeypatch, "-")
    assert logger.access_log_enabled

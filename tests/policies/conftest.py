"""Policy tests: rolled-back tests reuse policy ids, so each starts with an empty criteria
cache (the app's, `app.extensions["policy_criteria"]`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask


@pytest.fixture(autouse=True)
def _fresh_criteria_cache(app: Flask) -> Iterator[None]:
    app.extensions["policy_criteria"].clear()
    yield
    app.extensions["policy_criteria"].clear()

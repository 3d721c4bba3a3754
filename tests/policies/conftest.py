"""Policy tests: the criteria cache is per process, and rolled-back tests reuse policy ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.policies import matching


@pytest.fixture(autouse=True)
def _fresh_criteria_cache() -> Iterator[None]:
    matching._CACHE.clear()
    yield
    matching._CACHE.clear()

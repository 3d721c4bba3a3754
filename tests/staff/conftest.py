"""Staff tests hash passwords with the factories' cheap argon2 profile (not the production one)."""

from __future__ import annotations

import pytest

from app.identity import passwords
from tests.factories.staff import TEST_HASHER


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # ~150 ms per hash with the production profile; the behaviour under test is the same.
    monkeypatch.setattr(passwords, "_hasher", TEST_HASHER)

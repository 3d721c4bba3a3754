"""Audit fixtures: the chain's keys and a checkpoint folder of the test's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.audit.chain import AuditChain
from app.audit.checkpoints import CheckpointSigner, CheckpointStore
from app.audit.links import MacKeys
from tests.support.audit import key_spec


@pytest.fixture
def make_chain(tmp_path: Path) -> Callable[..., AuditChain]:
    """An AuditChain with the given link and checkpoint key ids (first one current), all
    checkpointing into one folder of this test."""

    def make(mac: tuple[str, ...] = ("m1",), signing: tuple[str, ...] = ("c1",)) -> AuditChain:
        return AuditChain(
            mac_keys=MacKeys.from_spec(key_spec(*mac)),
            signer=CheckpointSigner.from_spec(key_spec(*signing)),
            checkpoints=CheckpointStore(tmp_path / "checkpoints"),
        )

    return make


@pytest.fixture
def audit_chain(make_chain: Callable[..., AuditChain]) -> AuditChain:
    return make_chain()

"""What sealing and verifying the audit chain need from outside the database: the link keys,
the checkpoint signing keys and the checkpoint folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.audit.checkpoints import CheckpointSigner, CheckpointStore
from app.audit.links import MacKeys


@dataclass(frozen=True)
class AuditChain:
    mac_keys: MacKeys
    signer: CheckpointSigner
    checkpoints: CheckpointStore

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AuditChain:
        """From the app's AUDIT_MAC_KEYS, AUDIT_CHECKPOINT_KEYS and AUDIT_CHECKPOINT_DIR."""
        return cls(
            mac_keys=MacKeys.from_spec(config["AUDIT_MAC_KEYS"]),
            signer=CheckpointSigner.from_spec(config["AUDIT_CHECKPOINT_KEYS"]),
            checkpoints=CheckpointStore(Path(config["AUDIT_CHECKPOINT_DIR"])),
        )

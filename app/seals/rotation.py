"""Rotation of the seal master key (SEAL_MASTER_KEY): re-wrap every software key's data key
under the current master key, so that the old master key can be removed.

Two places hold envelopes: the `seal_keys` rows (seals' and signing events' keys) and the
CA key files in SEAL_PKI_DIR. Re-wrapping changes only the wrapping of each data key; the
private keys, and so every certificate and signature, stay the same. Keys held in an HSM
(PKCS#11) have no envelope and are left alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.seals.context import SealContext
from app.seals.models import SealKey
from seals.keys import ECDSA_P256, KeyRef

# The CA key files `seals.pki.write_pki` writes, with the label each envelope is bound to.
PKI_KEY_FILES = {"issuing.key.json": "ca-issuing", "root.key.json": "ca-root"}


@dataclass
class RewrapResult:
    """What a re-wrap did: keys re-wrapped and keys already under the current master key."""

    rewrapped_rows: int = 0
    current_rows: int = 0
    rewrapped_files: list[str] = field(default_factory=list)
    current_files: list[str] = field(default_factory=list)


def rewrap_keys(session: Session, ctx: SealContext) -> RewrapResult:
    """Re-wrap every software key not under the current master key (rows flushed, the caller
    commits; CA key files replaced atomically). Opening an old envelope needs its master key
    still listed in SEAL_MASTER_KEY: KeyError_ names the key otherwise."""
    provider = ctx.software
    current = provider.current_key_id
    result = RewrapResult()
    rows = session.scalars(
        select(SealKey)
        .where(SealKey.provider == provider.kind, SealKey.wrapped.is_not(None))
        .order_by(SealKey.id)
        .with_for_update()
    )
    for row in rows:
        key = KeyRef(row.provider, row.ref, row.algorithm, row.wrapped or b"")
        if provider.master_key_id(key) == current:
            result.current_rows += 1
            continue
        row.wrapped = provider.rewrap(key).material
        result.rewrapped_rows += 1
    session.flush()
    for name, label in PKI_KEY_FILES.items():
        path = ctx.pki_dir / name
        if not path.exists():
            continue
        key = KeyRef(provider.kind, label, ECDSA_P256, path.read_bytes())
        if provider.master_key_id(key) == current:
            result.current_files.append(name)
            continue
        _replace(path, provider.rewrap(key).material)
        result.rewrapped_files.append(name)
    if result.rewrapped_files:
        ctx.reset_pki()  # this process reads the re-wrapped files from now on
    return result


def _replace(path: Path, content: bytes) -> None:
    """Write `content` over `path` atomically, readable by the owner only (as write_pki does)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, path)

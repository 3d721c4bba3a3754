"""The hash-chained audit log: each entry carries the previous entry's link (`app.audit.links`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, intpk, str64


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[intpk]
    # Position in the chain: 1, 2, 3, ... with no gaps, given when the entry is sealed.
    # NULL until then (see app.audit.service: sealing is kept off the request's transaction).
    seq: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), unique=True
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    action: Mapped[str64] = mapped_column(index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # user | staff | system | anonymous
    actor_id: Mapped[int | None]
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    # Never personal data: ids, outcomes, reasons.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    # The entry's link (hex): a keyed MAC or, for entries sealed before 0010, a plain SHA-256.
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # How `hash` was computed ("hmac-sha256", or "sha256" before 0010) and, for a MAC, the id
    # of its key in AUDIT_MAC_KEYS. NULL until sealed, as the link itself.
    link_alg: Mapped[str | None] = mapped_column(String(16))
    key_id: Mapped[str | None] = mapped_column(String(16))


class AuditChainHead(Base):
    """One row: the last sealed entry's seq and hash. Updating it locks the chain for one sealer."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    last_hash: Mapped[str64]

"""Append to and verify the audit chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.models import AuditChainHead, AuditEntry

GENESIS_HASH = "0" * 64
HEAD_ID = 1


@dataclass(frozen=True)
class Actor:
    kind: str  # user | staff | system | anonymous
    id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    occurred_at: dt.datetime,
    action: str,
    actor_kind: str,
    actor_id: int | None,
    subject_type: str | None,
    subject_id: str | None,
    details: dict[str, Any],
    request_id: str | None,
) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the entry's fields."""
    body = json.dumps(
        {
            "seq": seq,
            "at": occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "action": action,
            "actor": [actor_kind, actor_id],
            "subject": [subject_type, subject_id],
            "details": details,
            "request_id": request_id,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _lock_head(session: Session) -> AuditChainHead:
    # The no-op UPDATE takes PostgreSQL's row lock and SQLite's write lock until commit, so
    # concurrent transactions append one after another and never fork the chain.
    result = session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(last_seq=AuditChainHead.last_seq)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(AuditChainHead(id=HEAD_ID, last_seq=0, last_hash=GENESIS_HASH))
        except IntegrityError:
            pass  # another transaction created it first
        return _lock_head(session)
    head = session.scalars(
        select(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .execution_options(populate_existing=True)
    ).one()
    return head


def record(
    session: Session,
    action: str,
    *,
    actor: Actor,
    now: dt.datetime,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Append an entry to the chain in the caller's transaction (flush, no commit)."""
    head = _lock_head(session)
    seq = head.last_seq + 1
    # Store at microsecond precision in UTC so the hash recomputes identically on every backend.
    occurred_at = now.astimezone(dt.UTC)
    subject = None if subject_id is None else str(subject_id)
    clean_details = details or {}
    digest = entry_hash(
        head.last_hash,
        seq=seq,
        occurred_at=occurred_at,
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id,
        subject_type=subject_type,
        subject_id=subject,
        details=clean_details,
        request_id=request_id,
    )
    entry = AuditEntry(
        seq=seq,
        occurred_at=occurred_at,
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id,
        subject_type=subject_type,
        subject_id=subject,
        details=clean_details,
        request_id=request_id,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    head.last_seq = seq
    head.last_hash = digest
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None


def _entries(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000)
    )


def verify(session: Session) -> VerifyReport:
    """Recompute every hash and link; report the first entry that does not fit."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for entry in _entries(session):
        count += 1
        if entry.seq != expected_seq:
            return VerifyReport(count, False, entry.seq, f"expected seq {expected_seq}")
        if entry.prev_hash != prev_hash:
            return VerifyReport(count, False, entry.seq, "prev_hash does not link")
        recomputed = entry_hash(
            prev_hash,
            seq=entry.seq,
            occurred_at=entry.occurred_at,
            action=entry.action,
            actor_kind=entry.actor_kind,
            actor_id=entry.actor_id,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            details=entry.details,
            request_id=entry.request_id,
        )
        if recomputed != entry.hash:
            return VerifyReport(count, False, entry.seq, "content does not match its hash")
        prev_hash = entry.hash
        expected_seq += 1
    head = session.get(AuditChainHead, HEAD_ID)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        return VerifyReport(count, False, head.last_seq, "entries missing at the end of the chain")
    return VerifyReport(count, True)

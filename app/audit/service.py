"""Append to, seal and verify the audit chain.

Appending and chaining are two steps. `record` inserts the entry in the caller's transaction
and takes no lock, so logins and other hot paths never queue behind one another. `seal_pending`
(run by the background job runner every few seconds, and by `flask audit seal`) takes the
chain head's row lock in a short transaction of its own and gives the unsealed entries, in
insertion order, their seq, the previous entry's hash and their own hash. An entry is thus
tamper-evident within seconds of its commit; until then `verify` counts it as pending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
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
    # concurrent sealers take turns and never fork the chain.
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
    """Add an entry in the caller's transaction (flush, no commit); sealed later."""
    entry = AuditEntry(
        # Microsecond precision in UTC, so the hash recomputes identically on every backend.
        occurred_at=now.astimezone(dt.UTC),
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id),
        details=details or {},
        request_id=request_id,
    )
    session.add(entry)
    return entry


def _hash_of(entry: AuditEntry, prev_hash: str, seq: int) -> str:
    return entry_hash(
        prev_hash,
        seq=seq,
        occurred_at=entry.occurred_at,
        action=entry.action,
        actor_kind=entry.actor_kind,
        actor_id=entry.actor_id,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        details=entry.details,
        request_id=entry.request_id,
    )


def seal_pending(session: Session, *, limit: int = 1000) -> int:
    """Chain up to `limit` committed, unsealed entries in insertion order; return how many."""
    head = _lock_head(session)
    pending = session.scalars(
        select(AuditEntry).where(AuditEntry.seq.is_(None)).order_by(AuditEntry.id).limit(limit)
    ).all()
    for entry in pending:
        seq = head.last_seq + 1
        entry.seq = seq
        entry.prev_hash = head.last_hash
        entry.hash = _hash_of(entry, head.last_hash, seq)
        head.last_seq = seq
        head.last_hash = entry.hash
    session.flush()
    return len(pending)


def seal_all(session_factory: Callable[[], Session], *, batch: int = 1000) -> int:
    """Seal everything pending, one short transaction per batch; return how many."""
    sealed = 0
    while True:
        with session_factory() as session:
            count = seal_pending(session, limit=batch)
            session.commit()
        sealed += count
        if count < batch:
            return sealed


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None
    pending: int = 0


def _entries(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(
        select(AuditEntry)
        .where(AuditEntry.seq.is_not(None))
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=1000)
    )


def verify(session: Session) -> VerifyReport:
    """Recompute every sealed hash and link; report the first entry that does not fit."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for entry in _entries(session):
        count += 1
        if entry.seq != expected_seq:
            return VerifyReport(count, False, entry.seq, f"expected seq {expected_seq}")
        if entry.prev_hash != prev_hash:
            return VerifyReport(count, False, entry.seq, "prev_hash does not link")
        if _hash_of(entry, prev_hash, expected_seq) != entry.hash:
            return VerifyReport(count, False, entry.seq, "content does not match its hash")
        prev_hash = entry.hash
        expected_seq += 1
    pending = session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None))
    )
    head = session.get(AuditChainHead, HEAD_ID)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        return VerifyReport(
            count, False, head.last_seq, "entries missing at the end of the chain", pending or 0
        )
    return VerifyReport(count, True, pending=pending or 0)

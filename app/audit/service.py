"""Append to, seal and verify the audit chain.

Appending and chaining are two steps. `record` inserts the entry in the caller's transaction
and takes no lock, so logins and other hot paths never queue behind one another. `seal_pending`
(run by the background job runner every few seconds through `seal_all`, and by
`flask audit seal`) takes the chain head's row lock in a short transaction of its own and gives
the unsealed entries, in insertion order, their seq, the previous entry's link and their own
link, a keyed MAC (`app.audit.links`). After its last commit `seal_all` writes one signed
checkpoint of the head outside the database (`app.audit.checkpoints`). An entry is thus
tamper-evident within seconds of its commit; until then `verify` counts it as pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.chain import AuditChain
from app.audit.checkpoints import Checkpoint
from app.audit.links import HMAC_SHA256, SHA256, entry_hash, entry_mac
from app.audit.models import AuditChainHead, AuditEntry
from app.db import affected_rows, built_once, utcnow

__all__ = [
    "GENESIS_HASH",
    "Actor",
    "AuditChain",
    "VerifyReport",
    "entry_hash",
    "record",
    "seal_all",
    "seal_pending",
    "verify",
    "write_checkpoint",
]

GENESIS_HASH = "0" * 64
HEAD_ID = 1


@dataclass(frozen=True)
class Actor:
    kind: str  # user | staff | system | anonymous
    id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


def _lock_head(session: Session) -> AuditChainHead:
    # The no-op UPDATE takes PostgreSQL's row lock and SQLite's write lock until commit, so
    # concurrent sealers take turns and never fork the chain.
    result = session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(last_seq=AuditChainHead.last_seq)
    )
    if affected_rows(result) == 0:
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
) -> None:
    """Write an entry in the caller's transaction (no commit); sealed later.

    An INSERT on the session's connection, at once: an entry is never read back or changed
    through the ORM before it is sealed, and the ORM's unit of work cost about twice the
    statement's CPU again (~170 µs; a login writes one entry). Nothing references an entry,
    so nothing pending in the session has to be written first.
    """
    session.connection().execute(
        _insert_entry_statement(),
        {
            # Microsecond precision in UTC, so the hash recomputes identically on every backend.
            "occurred_at": now.astimezone(dt.UTC),
            "action": action,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "subject_type": subject_type,
            "subject_id": None if subject_id is None else str(subject_id),
            "details": details or {},
            "request_id": request_id,
        },
    )


@built_once
def _insert_entry_statement() -> Any:
    return insert(AuditEntry)


def _fields(entry: AuditEntry, seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "occurred_at": entry.occurred_at,
        "action": entry.action,
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "details": entry.details,
        "request_id": entry.request_id,
    }


def seal_pending(session: Session, chain: AuditChain, *, limit: int = 1000) -> int:
    """Chain up to `limit` committed, unsealed entries in insertion order; return how many."""
    head = _lock_head(session)
    pending = session.scalars(
        select(AuditEntry).where(AuditEntry.seq.is_(None)).order_by(AuditEntry.id).limit(limit)
    ).all()
    key_id, key = chain.mac_keys.current_id, chain.mac_keys.current
    for entry in pending:
        seq = head.last_seq + 1
        entry.seq = seq
        entry.prev_hash = head.last_hash
        entry.link_alg = HMAC_SHA256
        entry.key_id = key_id
        entry.hash = entry_mac(key, key_id, head.last_hash, **_fields(entry, seq))
        head.last_seq = seq
        head.last_hash = entry.hash
    session.flush()
    return len(pending)


def write_checkpoint(session: Session, chain: AuditChain, *, now: dt.datetime) -> Checkpoint | None:
    """Sign the chain head as `session` sees it and store it outside the database.

    Call it on committed state only (`seal_all` does, after its commit): a checkpoint ahead of
    the committed chain would read as a truncation. None if the chain is empty or this head
    was checkpointed already.
    """
    head = session.get(AuditChainHead, HEAD_ID)
    if head is None or head.last_seq == 0:
        return None
    checkpoint = chain.signer.sign(head.last_seq, head.last_hash, at=now)
    return checkpoint if chain.checkpoints.write(checkpoint) is not None else None


def seal_all(
    session_factory: Callable[[], Session],
    chain: AuditChain,
    *,
    batch: int = 1000,
    now: Callable[[], dt.datetime] = utcnow,
) -> int:
    """Seal everything pending, one short transaction per batch, then checkpoint the head
    once if anything was sealed; return how many."""
    sealed = 0
    while True:
        with session_factory() as session:
            count = seal_pending(session, chain, limit=batch)
            session.commit()
        sealed += count
        if count < batch:
            break
    if sealed:
        with session_factory() as session:
            write_checkpoint(session, chain, now=now())
    return sealed


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None
    pending: int = 0
    checkpoints: int = 0


def _entries(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(
        select(AuditEntry)
        .where(AuditEntry.seq.is_not(None))
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=1000)
    )


def _read_checkpoints(chain: AuditChain) -> dict[int, Checkpoint] | VerifyReport:
    """The checkpoints by seq, each signature checked; a failed report at the first bad one."""
    by_seq: dict[int, Checkpoint] = {}
    for stored in chain.checkpoints.read_all():
        checkpoint = stored.checkpoint
        if checkpoint is None:
            return VerifyReport(0, False, None, f"checkpoint {stored.path}: {stored.problem}")
        problem = chain.signer.problem_with(checkpoint)
        if problem is None and by_seq.get(checkpoint.seq, checkpoint).link != checkpoint.link:
            problem = "contradicts another checkpoint of the same seq"
        if problem is not None:
            return VerifyReport(0, False, checkpoint.seq, f"checkpoint {stored.path}: {problem}")
        by_seq[checkpoint.seq] = checkpoint
    return by_seq


# How verify reports an entry linked under a key id AUDIT_MAC_KEYS does not list.
UNKNOWN_KEY_REASON = "linked with unknown key id"


def _link_problem(entry: AuditEntry, chain: AuditChain, prev_hash: str, seq: int) -> str | None:
    if entry.link_alg == HMAC_SHA256:
        key = chain.mac_keys.get(entry.key_id)
        if key is None:
            return f"{UNKNOWN_KEY_REASON} {entry.key_id!r}"
        expected = entry_mac(key, entry.key_id or "", prev_hash, **_fields(entry, seq))
    elif entry.link_alg == SHA256:
        expected = entry_hash(prev_hash, **_fields(entry, seq))
    else:
        return f"unknown link algorithm {entry.link_alg!r}"
    return None if expected == entry.hash else "content does not match its link"


def verify(session: Session, chain: AuditChain) -> VerifyReport:
    """Recompute every sealed link and hold the chain against the signed checkpoints; report
    the first entry or checkpoint that does not fit."""
    checkpoints = _read_checkpoints(chain)
    if isinstance(checkpoints, VerifyReport):
        return checkpoints
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    keyed = False
    for entry in _entries(session):
        count += 1
        if entry.seq != expected_seq:
            return VerifyReport(count, False, entry.seq, f"expected seq {expected_seq}")
        if entry.prev_hash != prev_hash:
            return VerifyReport(count, False, entry.seq, "prev_hash does not link")
        link = entry.hash
        if link is None:
            return VerifyReport(count, False, entry.seq, "sealed without a link")
        if keyed and entry.link_alg != HMAC_SHA256:
            # Plain links exist only before the first keyed one (migration 0010): a plain link
            # after it is a rewrite by someone without the key.
            return VerifyReport(count, False, entry.seq, "unkeyed link after keyed ones")
        keyed = entry.link_alg == HMAC_SHA256
        problem = _link_problem(entry, chain, prev_hash, expected_seq)
        if problem is not None:
            return VerifyReport(count, False, entry.seq, problem)
        checkpoint = checkpoints.get(expected_seq)
        if checkpoint is not None and checkpoint.link != link:
            return VerifyReport(
                count, False, entry.seq, f"differs from the checkpoint of {checkpoint.at:%F %T}Z"
            )
        prev_hash = link
        expected_seq += 1
    last_seq = expected_seq - 1
    pending = (
        session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None)))
        or 0
    )
    latest = max(checkpoints, default=0)
    if latest > last_seq:
        return VerifyReport(
            count,
            False,
            last_seq + 1,
            f"entries missing at the end of the chain: it ends at seq {last_seq}, "
            f"a checkpoint of {checkpoints[latest].at:%F %T}Z has seq {latest}",
            pending,
            len(checkpoints),
        )
    head = session.get(AuditChainHead, HEAD_ID)
    if head is not None and (head.last_seq != last_seq or head.last_hash != prev_hash):
        return VerifyReport(
            count,
            False,
            head.last_seq,
            "entries missing at the end of the chain",
            pending,
            len(checkpoints),
        )
    return VerifyReport(count, True, pending=pending, checkpoints=len(checkpoints))

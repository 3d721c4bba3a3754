"""Telling the job runner about new work only once the transaction that made it has committed.

Services stay transaction-pure: they call `after_commit_dispatch(session, "notify", row_id)`
next to their flush, and nothing leaves the process until the caller commits. A rollback (or a
session closed without commit) drops the note, so a worker is never sent to a row that does not
exist, and a worker never looks before the row is visible to it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)

_PENDING = "jobs.after_commit"

Dispatcher = Callable[[str, list[int]], None]

_dispatchers: weakref.WeakKeyDictionary[sessionmaker[Session], Dispatcher] = (
    weakref.WeakKeyDictionary()
)


def after_commit_dispatch(session: Session, kind: str, *ids: int) -> None:
    """Note work of `kind` (with the ids it concerns) to dispatch when `session` commits."""
    pending: dict[str, list[int]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(kind, []).extend(ids)


def install(factory: sessionmaker[Session], dispatcher: Dispatcher) -> None:
    """Dispatch the notes of every session `factory` makes, after each outermost commit.

    Installing again on the same factory replaces the dispatcher (one listener per factory,
    so the notes are taken exactly once).
    """
    if factory in _dispatchers:
        _dispatchers[factory] = dispatcher
        return
    _dispatchers[factory] = dispatcher

    def on_commit(session: Session) -> None:
        # after_commit also fires when a savepoint is released; the notes wait for the end.
        if session.in_nested_transaction():
            return
        pending: dict[str, list[int]] = session.info.pop(_PENDING, {})
        for kind, ids in pending.items():
            try:
                _dispatchers[factory](kind, ids)
            except Exception:
                # The commit stands; the outbox sweep finds the rows without this hint.
                log.exception("dispatching jobs after commit failed", extra={"job": kind})

    def on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        # The outermost transaction ended without on_commit taking the notes: rolled back.
        if transaction.parent is None:
            session.info.pop(_PENDING, None)

    event.listen(factory, "after_commit", on_commit)
    event.listen(factory, "after_transaction_end", on_transaction_end)


def pending_for(session: Session) -> dict[str, Any]:
    """What `session` will dispatch at its next commit (for tests and debugging)."""
    return dict(session.info.get(_PENDING, {}))

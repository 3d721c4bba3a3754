"""Migration 0010 keeps the entries chained before it verifiable: marked as plain SHA-256."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, insert, select

from app import create_app
from app.audit import service as audit
from app.audit.chain import AuditChain
from app.audit.models import AuditChainHead, AuditEntry
from app.db import get_session
from app.migrations_cli import upgrade_database

AT = dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC)


def test_entries_sealed_before_0010_are_marked_sha256_and_still_verify(tmp_path: Path) -> None:
    application: Flask = create_app(
        "testing",
        DATABASE_URL=f"sqlite:///{tmp_path / 'before.db'}",
        AUDIT_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
    )
    upgrade_database(application, "0009_tickets_by_category")
    engine = create_engine(application.config["DATABASE_URL"])
    # Rows as the code before 0010 sealed them: plain links, plus one still pending.
    prev_hash, rows = audit.GENESIS_HASH, []
    for seq in (1, 2):
        fields = {
            "seq": seq,
            "occurred_at": AT,
            "action": "staff.login",
            "actor_kind": "staff",
            "actor_id": seq,
            "subject_type": None,
            "subject_id": None,
            "details": {"n": seq},
            "request_id": None,
        }
        link = audit.entry_hash(prev_hash, **fields)
        rows.append({**fields, "prev_hash": prev_hash, "hash": link})
        prev_hash = link
    pending = {**rows[0], "seq": None, "prev_hash": None, "hash": None, "details": {"n": 3}}
    columns = ("seq", "occurred_at", "action", "actor_kind", "actor_id", "details")
    with engine.begin() as connection:
        for row in [*rows, pending]:
            values = {k: row[k] for k in (*columns, "prev_hash", "hash")}
            connection.execute(insert(AuditEntry.__table__).values(**values))
        connection.execute(
            insert(AuditChainHead.__table__).values(id=1, last_seq=2, last_hash=prev_hash)
        )

    upgrade_database(application)

    with application.app_context():
        session = get_session()
        marks = session.execute(
            select(AuditEntry.seq, AuditEntry.link_alg, AuditEntry.key_id).order_by(AuditEntry.id)
        ).all()
        assert [tuple(m) for m in marks] == [
            (1, "sha256", None),
            (2, "sha256", None),
            (None, None, None),
        ]
        chain = AuditChain.from_config(application.config)
        assert audit.verify(session, chain).ok
        # The pending one is sealed with a keyed link after them.
        assert audit.seal_pending(session, chain) == 1
        session.commit()
        report = audit.verify(session, chain)
        assert report.ok and report.entries == 3
    engine.dispose()
    application.extensions["db"].engine.dispose()

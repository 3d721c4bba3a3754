"""The audit log is a chain of keyed links: any edit, deletion or reordering is detected."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.cli import audit_seal, audit_verify
from app.audit.models import AuditEntry
from tests.support.audit import record_logins


def _append(
    session: Session, chain: audit.AuditChain | None, count: int, *, seal: bool = True
) -> list[AuditEntry]:
    entries = record_logins(session, count)
    if seal:
        assert chain is not None
        audit.seal_pending(session, chain)
    return entries


def test_recording_takes_no_lock_and_sealing_chains_in_insertion_order(
    session: Session, audit_chain: audit.AuditChain
) -> None:
    entries = _append(session, None, 3, seal=False)
    session.flush()
    assert all(e.seq is None and e.hash is None for e in entries)
    report = audit.verify(session, audit_chain)
    assert report.ok and report.entries == 0 and report.pending == 3
    assert audit.seal_pending(session, audit_chain) == 3
    assert [e.seq for e in entries] == [1, 2, 3]
    assert {(e.link_alg, e.key_id) for e in entries} == {("hmac-sha256", "m1")}
    assert audit.seal_pending(session, audit_chain) == 0
    later = _append(session, audit_chain, 1)
    assert later[0].seq == 4 and later[0].prev_hash == entries[-1].hash
    assert audit.verify(session, audit_chain) == audit.VerifyReport(entries=4, ok=True)


def test_entries_link_to_their_predecessor(session: Session, audit_chain: audit.AuditChain) -> None:
    first, second, third = _append(session, audit_chain, 3)
    assert first.prev_hash == audit.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert audit.verify(session, audit_chain).ok


def test_editing_an_entry_is_detected(session: Session, audit_chain: audit.AuditChain) -> None:
    entries = _append(session, audit_chain, 4)
    session.execute(
        update(AuditEntry).where(AuditEntry.id == entries[1].id).values(details={"outcome": "x"})
    )
    session.expire_all()
    report = audit.verify(session, audit_chain)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_deleting_an_entry_is_detected(session: Session, audit_chain: audit.AuditChain) -> None:
    entries = _append(session, audit_chain, 4)
    session.execute(delete(AuditEntry).where(AuditEntry.id == entries[2].id))
    session.expire_all()
    report = audit.verify(session, audit_chain)
    assert not report.ok and report.first_bad_seq == 4


def test_deleting_the_last_entry_is_detected(
    session: Session, audit_chain: audit.AuditChain
) -> None:
    entries = _append(session, audit_chain, 3)
    session.execute(delete(AuditEntry).where(AuditEntry.id == entries[-1].id))
    session.expire_all()
    assert not audit.verify(session, audit_chain).ok


def test_rewriting_an_entry_with_a_fresh_plain_hash_is_caught_at_that_entry(
    session: Session, audit_chain: audit.AuditChain
) -> None:
    entries = _append(session, audit_chain, 3)
    forged = audit.entry_hash(
        entries[0].prev_hash,
        seq=1,
        occurred_at=entries[0].occurred_at,
        action="staff.login",
        actor_kind="staff",
        actor_id=99,
        subject_type="staff",
        subject_id="1",
        details={"outcome": "ok", "n": 1},
        request_id="req-1",
    )
    session.execute(
        update(AuditEntry).where(AuditEntry.id == entries[0].id).values(actor_id=99, hash=forged)
    )
    session.expire_all()
    report = audit.verify(session, audit_chain)
    # The forger lacks the link key: the entry itself no longer matches its link.
    assert not report.ok and report.first_bad_seq == 1
    assert report.reason == "content does not match its link"


@pytest.fixture
def checkpoint_dir(app: Flask, tmp_path: Path) -> Path:
    """The app's checkpoint folder, this test's own (the app is shared by the session)."""
    folder = tmp_path / "cli-checkpoints"
    previous = app.config["AUDIT_CHECKPOINT_DIR"]
    app.config["AUDIT_CHECKPOINT_DIR"] = str(folder)
    yield folder
    app.config["AUDIT_CHECKPOINT_DIR"] = previous


def test_flask_audit_seal_then_verify_reports_tampering(
    app: Flask, session: Session, checkpoint_dir: Path
) -> None:
    entries = _append(session, None, 2, seal=False)
    session.commit()  # released to the outer test transaction; the CLI shares the connection
    runner = app.test_cli_runner()
    pending = runner.invoke(audit_verify)
    assert pending.exit_code == 0 and "2 awaiting sealing" in pending.output
    assert "sealed 2 audit entries" in runner.invoke(audit_seal).output
    assert len(list(checkpoint_dir.glob("*/*.json"))) == 1
    ok = runner.invoke(audit_verify)
    assert ok.exit_code == 0 and "intact: 2 entries" in ok.output, ok.output
    assert "1 checkpoints" in ok.output
    session.execute(update(AuditEntry).where(AuditEntry.id == entries[0].id).values(action="x"))
    broken = runner.invoke(audit_verify)
    assert broken.exit_code == 1
    assert "BROKEN at seq 1" in broken.output

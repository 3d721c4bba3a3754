"""Issue 10 §4: someone with write access to the database, but not to the environment's keys
nor the checkpoint folder, rewrites the audit chain."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.chain import AuditChain
from app.audit.links import entry_mac
from app.audit.models import AuditChainHead, AuditEntry
from tests.support.audit import NOW, key_spec, record_logins


def _append(session: Session, chain: AuditChain, count: int, *, start: int = 1) -> None:
    """Record and seal `count` entries, then checkpoint the head, as one sealing run does."""
    record_logins(session, count, start=start)
    audit.seal_pending(session, chain)
    audit.write_checkpoint(session, chain, now=NOW + dt.timedelta(seconds=start + count))


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "occurred_at": entry.occurred_at,
        "action": entry.action,
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "details": entry.details,
        "request_id": entry.request_id,
    }


def _plain(entry: AuditEntry, prev_hash: str) -> tuple[str, str | None, str]:
    """A forger's link: the old plain SHA-256, marked as such."""
    return "sha256", None, audit.entry_hash(prev_hash, **_fields(entry))


def _guessed_key(entry: AuditEntry, prev_hash: str) -> tuple[str, str | None, str]:
    """A forger's link: HMAC under a key of their own, with the real key id."""
    return "hmac-sha256", "m1", entry_mac(b"not-the-key" * 3, "m1", prev_hash, **_fields(entry))


def _rewrite_from(
    session: Session,
    seq: int,
    link: Callable[[AuditEntry, str], tuple[str, str | None, str]],
    *,
    edit: Callable[[AuditEntry], None] = lambda entry: None,
    until: int | None = None,
) -> None:
    """Edit entry `seq`, recompute every link from there (to `until`) with `link`, and move
    the head along."""
    prev_hash = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq - 1))
    prev_hash = prev_hash or audit.GENESIS_HASH
    last = seq - 1
    query = select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq)
    if until is not None:
        query = query.where(AuditEntry.seq <= until)
    for entry in session.scalars(query):
        if entry.seq == seq:
            edit(entry)
        entry.prev_hash = prev_hash
        entry.link_alg, entry.key_id, entry.hash = link(entry, prev_hash)
        prev_hash, last = entry.hash, entry.seq or 0
    if until is None:
        session.execute(update(AuditChainHead).values(last_seq=last, last_hash=prev_hash))
    session.flush()
    session.expire_all()


def _falsify(entry: AuditEntry) -> None:
    entry.details = {"outcome": "failed", "n": entry.seq}


def test_deleting_the_last_entry_and_rewinding_the_head_is_detected(
    session: Session, audit_chain: AuditChain
) -> None:
    _append(session, audit_chain, 3)
    second = session.scalars(select(AuditEntry).where(AuditEntry.seq == 2)).one()

    session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    session.execute(update(AuditChainHead).values(last_seq=2, last_hash=second.hash))
    session.expire_all()

    report = audit.verify(session, audit_chain)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.reason is not None and "entries missing at the end" in report.reason


@pytest.mark.parametrize("link", [_plain, _guessed_key], ids=["plain-sha256", "guessed-key"])
def test_editing_entry_300_and_recomputing_every_later_link_is_detected(
    session: Session,
    audit_chain: AuditChain,
    link: Callable[[AuditEntry, str], tuple[str, str | None, str]],
) -> None:
    _append(session, audit_chain, 310)

    _rewrite_from(session, 300, link, edit=_falsify)

    report = audit.verify(session, audit_chain)
    assert not report.ok
    assert report.first_bad_seq == 300


def test_rewriting_the_whole_chain_as_plain_links_is_caught_by_the_checkpoint(
    session: Session, audit_chain: AuditChain
) -> None:
    # No keyed link is left to break, but the signed checkpoint remembers the head's link.
    _append(session, audit_chain, 5)

    _rewrite_from(session, 1, _plain, edit=_falsify)

    report = audit.verify(session, audit_chain)
    assert not report.ok and report.first_bad_seq == 5
    assert report.reason is not None and "checkpoint" in report.reason


def test_truncating_back_to_an_older_checkpoint_is_still_caught_by_the_latest(
    session: Session, audit_chain: AuditChain
) -> None:
    _append(session, audit_chain, 3)
    _append(session, audit_chain, 3, start=4)
    third = session.scalars(select(AuditEntry).where(AuditEntry.seq == 3)).one()

    session.execute(delete(AuditEntry).where(AuditEntry.seq > 3))
    session.execute(update(AuditChainHead).values(last_seq=3, last_hash=third.hash))
    session.expire_all()

    report = audit.verify(session, audit_chain)
    assert not report.ok and report.first_bad_seq == 4 and report.checkpoints == 2


def test_a_checkpoint_edited_to_match_a_truncated_chain_is_refused(
    session: Session, audit_chain: AuditChain
) -> None:
    _append(session, audit_chain, 3)
    [path] = audit_chain.checkpoints.directory.glob("*/*.json")
    second = session.scalars(select(AuditEntry).where(AuditEntry.seq == 2)).one()
    session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    session.execute(update(AuditChainHead).values(last_seq=2, last_hash=second.hash))
    session.expire_all()

    document = json.loads(path.read_bytes())
    path.write_text(json.dumps({**document, "seq": 2, "link": second.hash}))

    report = audit.verify(session, audit_chain)
    assert not report.ok and report.reason is not None
    assert report.reason.endswith("invalid signature")


def test_a_checkpoint_signed_with_a_key_not_configured_is_refused(
    session: Session, make_chain: Callable[..., AuditChain]
) -> None:
    _append(session, make_chain(signing=("rogue",)), 2)

    report = audit.verify(session, make_chain(signing=("c1",)))

    assert not report.ok and report.reason is not None
    assert "unknown key id 'rogue'" in report.reason


def test_link_keys_rotate_and_old_entries_still_verify(
    session: Session, make_chain: Callable[..., AuditChain]
) -> None:
    before, after = make_chain(mac=("m1",)), make_chain(mac=("m2", "m1"))
    _append(session, before, 3)
    _append(session, after, 3, start=4)

    assert audit.verify(session, after).ok
    key_ids = session.scalars(select(AuditEntry.key_id).order_by(AuditEntry.seq)).all()
    assert key_ids == ["m1"] * 3 + ["m2"] * 3
    # Retiring the old key from the setting makes its entries unverifiable, and says so.
    report = audit.verify(session, make_chain(mac=("m2",)))
    assert not report.ok and report.first_bad_seq == 1
    assert report.reason == "linked with unknown key id 'm1'"


def test_checkpoint_keys_rotate_and_old_checkpoints_still_verify(
    session: Session, make_chain: Callable[..., AuditChain]
) -> None:
    _append(session, make_chain(signing=("c1",)), 2)
    rotated = make_chain(signing=("c2", "c1"))
    _append(session, rotated, 2, start=3)

    report = audit.verify(session, rotated)

    assert report.ok and report.checkpoints == 2
    signers = sorted(
        json.loads(p.read_bytes())["kid"] for p in rotated.checkpoints.directory.glob("*/*.json")
    )
    assert signers == ["c1", "c2"]


def test_entries_chained_before_keyed_links_still_verify_and_are_anchored(
    session: Session, audit_chain: AuditChain
) -> None:
    # What migration 0010 leaves: plain SHA-256 links marked 'sha256', then keyed ones.
    legacy = record_logins(session, 3)
    session.flush()
    prev_hash = audit.GENESIS_HASH
    for seq, entry in enumerate(legacy, start=1):
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.link_alg, entry.key_id, entry.hash = _plain(entry, prev_hash)
        prev_hash = entry.hash
    session.add(AuditChainHead(id=1, last_seq=3, last_hash=prev_hash))
    session.flush()
    _append(session, audit_chain, 2, start=4)
    assert audit.verify(session, audit_chain).ok

    # Plain links can be recomputed by anyone, but the first keyed link covers the last one.
    _rewrite_from(session, 2, _plain, edit=_falsify, until=3)

    report = audit.verify(session, audit_chain)
    assert not report.ok and report.first_bad_seq == 4


def test_seal_all_writes_one_checkpoint_per_run_and_keeps_them_all(
    app: Any, session: Session, audit_chain: AuditChain
) -> None:
    factory = app.extensions["db"].sessionmaker
    files = audit_chain.checkpoints.directory
    record_logins(session, 5)
    session.commit()  # released to the outer test transaction, which seal_all's sessions join

    assert audit.seal_all(factory, audit_chain, batch=2, now=lambda: NOW) == 5
    assert [p.name for p in files.glob("*/*.json")] == ["000000000005.json"]
    assert audit.seal_all(factory, audit_chain, now=lambda: NOW) == 0
    record_logins(session, 1, start=6)
    session.commit()
    assert audit.seal_all(factory, audit_chain, now=lambda: NOW) == 1

    assert sorted(p.name for p in files.glob("*/*.json")) == [
        "000000000005.json",
        "000000000006.json",
    ]
    assert audit.verify(session, audit_chain).checkpoints == 2


def test_the_job_runner_seals_and_checkpoints_with_the_apps_keys(app: Any, tmp_path: Path) -> None:
    from app.db import get_session
    from app.jobs import get_runner
    from app.jobs.inprocess import InProcessRunner
    from tests.support.jobs import build_app

    folder = tmp_path / "runner-checkpoints"
    application = build_app(app, tmp_path, JOB_RUNNER="inprocess", AUDIT_CHECKPOINT_DIR=str(folder))
    runner = get_runner(application)
    assert isinstance(runner, InProcessRunner)
    with application.app_context():
        record_logins(get_session(), 2)
        get_session().commit()

    runner.run_once()

    assert [p.name for p in folder.glob("*/*.json")] == ["000000000002.json"]
    with application.app_context():
        chain = AuditChain.from_config(application.config)
        assert audit.verify(get_session(), chain).ok
        assert set(get_session().scalars(select(AuditEntry.key_id))) == {"dev1"}
    runner.stop()
    application.extensions["db"].engine.dispose()


def test_the_key_list_setting_is_the_shared_one() -> None:
    # One parser for every key list: a malformed audit key is refused like any other.
    with pytest.raises(ValueError, match="audit MAC key"):
        AuditChain.from_config(
            {
                "AUDIT_MAC_KEYS": "m1:c2hvcnQ=",
                "AUDIT_CHECKPOINT_KEYS": key_spec("c1"),
                "AUDIT_CHECKPOINT_DIR": "/nonexistent",
            }
        )

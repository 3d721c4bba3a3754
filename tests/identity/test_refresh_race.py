"""Refreshes racing with one token on real PostgreSQL connections: one wins, never two."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEntry
from app.db import make_engine, utcnow
from app.errors import DomainError
from app.identity.errors import KeepsWrites
from app.identity.models import LoginFamily, User
from app.identity.principals import principal_for
from app.identity.sessions import TokenPair, refresh_session, start_session
from tests.factories.identity import app_token_settings

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
        reason="needs PostgreSQL: real parallel connections and row locks",
    ),
]

RACERS = 6


@pytest.fixture
def committed_login(
    app: Flask, database_url: str
) -> Iterator[tuple[sessionmaker[Session], TokenPair]]:
    """A committed user and login on a separate engine; removed again afterwards.

    Its audit entries are removed too: other tests expect an empty log.
    """
    engine = make_engine(database_url)
    make_session = sessionmaker(bind=engine, expire_on_commit=False)
    with make_session() as setup:
        user = User(openid=f"o_race_{uuid.uuid4().hex[:12]}")
        setup.add(user)
        setup.flush()
        pair = start_session(
            setup,
            principal_for(setup, "user", user.id),
            settings=app_token_settings(app),
            refresh_ttl_seconds=3600,
            now=utcnow(),
        )
        setup.commit()
    try:
        yield make_session, pair
    finally:
        with make_session() as cleanup:
            cleanup.execute(delete(LoginFamily).where(LoginFamily.id == pair.family_id))
            cleanup.execute(delete(User).where(User.id == user.id))
            # Nothing seals in tests (manual job runner): this test's entries are the unsealed ones.
            cleanup.execute(delete(AuditEntry).where(AuditEntry.seq.is_(None)))
            cleanup.commit()
        engine.dispose()


def _attempt(app: Flask, session: Session, token: str) -> str:
    """Refresh as the view does: commit on success, and keep the revocation on reuse."""
    try:
        refresh_session(
            session,
            token,
            settings=app_token_settings(app),
            refresh_ttl_seconds=3600,
            now=utcnow(),
        )
    except DomainError as exc:
        if isinstance(exc, KeepsWrites):
            session.commit()
        else:
            session.rollback()
        return exc.code
    session.commit()
    return "ok"


def test_racing_refreshes_with_one_token_let_exactly_one_through(
    app: Flask, committed_login: tuple[Callable[[], Session], TokenPair]
) -> None:
    make_session, pair = committed_login
    start = threading.Barrier(RACERS)

    def racer(_: int) -> str:
        with make_session() as session:
            start.wait()
            return _attempt(app, session, pair.refresh_token)

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(racer, range(RACERS)))

    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {"REFRESH_TOKEN_REUSED", "REFRESH_TOKEN_INVALID"}
    with make_session() as check:
        family = check.get(LoginFamily, pair.family_id)
        assert family is not None and family.revoked_reason == "reuse_detected"
        audits = check.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "session.refresh_reuse_detected",
                AuditEntry.subject_id == pair.family_id,
            )
        ).all()
        assert len(audits) == 1


def test_a_refresh_that_read_the_token_before_the_winner_committed_still_loses(
    app: Flask, committed_login: tuple[Callable[[], Session], TokenPair]
) -> None:
    make_session, pair = committed_login
    winner = make_session()
    # The winner has spent the token but not committed: a late reader still sees it unused.
    refresh_session(
        winner,
        pair.refresh_token,
        settings=app_token_settings(app),
        refresh_ttl_seconds=3600,
        now=utcnow(),
    )
    outcome: list[str] = []

    def late_refresh() -> None:
        with make_session() as session:
            outcome.append(_attempt(app, session, pair.refresh_token))

    late = threading.Thread(target=late_refresh)
    late.start()
    with make_session() as probe:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
            if waiting:
                break
            probe.rollback()
            time.sleep(0.02)
        assert waiting, "the late refresh never waited for the winner's row lock"

    winner.commit()
    winner.close()
    late.join(timeout=10)

    assert outcome == ["REFRESH_TOKEN_REUSED"]

"""Refreshes racing with one token on real parallel connections.

A mini-program whose access token expired fires several requests at once, each refreshing
with the same refresh token: all of them get the same successor pair, and the login lives on
(issue 10 §5). Runs on SQLite (writers take turns) and on PostgreSQL (row locks).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEntry
from app.db import make_engine, utcnow
from app.errors import DomainError
from app.identity.errors import KeepsWrites
from app.identity.models import LoginFamily, RefreshToken, User
from app.identity.principals import principal_for
from app.identity.sessions import TokenPair, refresh_session, start_session
from tests.factories.identity import app_token_settings
from tests.support.races import on_postgres, wait_for_a_lock_wait

RACERS = 10
GRACE_SECONDS = 10


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
            cleanup.execute(delete(RefreshToken).where(RefreshToken.family_id == pair.family_id))
            cleanup.execute(delete(LoginFamily).where(LoginFamily.id == pair.family_id))
            cleanup.execute(delete(User).where(User.id == user.id))
            # Nothing seals in tests (manual job runner): this test's entries are the unsealed ones.
            cleanup.execute(delete(AuditEntry).where(AuditEntry.seq.is_(None)))
            cleanup.commit()
        engine.dispose()


def _attempt(app: Flask, session: Session, token: str) -> tuple[str, str]:
    """Refresh as the view does: commit on success, and keep the revocation on reuse.

    Returns ("ok", the new refresh token) or (the error code, "").
    """
    try:
        pair = refresh_session(
            session,
            token,
            settings=app_token_settings(app),
            refresh_ttl_seconds=3600,
            reuse_grace_seconds=GRACE_SECONDS,
            now=utcnow(),
        )
    except DomainError as exc:
        if isinstance(exc, KeepsWrites):
            session.commit()
        else:
            session.rollback()
        return exc.code, ""
    session.commit()
    return "ok", pair.refresh_token


def test_parallel_refreshes_with_one_token_all_get_the_same_successor(
    app: Flask, committed_login: tuple[sessionmaker[Session], TokenPair]
) -> None:
    make_session, pair = committed_login
    start = threading.Barrier(RACERS)

    def racer(_: int) -> tuple[str, str]:
        with make_session() as session:
            start.wait()
            return _attempt(app, session, pair.refresh_token)

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(racer, range(RACERS)))

    assert len(set(outcomes)) == 1, outcomes
    [(outcome, successor)] = set(outcomes)
    assert outcome == "ok" and successor != pair.refresh_token
    with make_session() as check:
        family = check.get(LoginFamily, pair.family_id)
        assert family is not None and family.revoked_at is None
        tokens = check.scalars(
            select(RefreshToken).where(RefreshToken.family_id == pair.family_id)
        ).all()
        assert len(tokens) == 2  # the spent one and its one successor
        assert not check.scalars(
            select(AuditEntry).where(AuditEntry.action == "session.refresh_reuse_detected")
        ).all()
    # The successor everyone holds is a working refresh token.
    with make_session() as session:
        outcome, following = _attempt(app, session, successor)
        assert outcome == "ok" and following not in {successor, pair.refresh_token}


@on_postgres
def test_a_refresh_that_read_the_token_before_the_winner_committed_gets_the_winners_pair(
    app: Flask, committed_login: tuple[sessionmaker[Session], TokenPair]
) -> None:
    make_session, pair = committed_login
    winner = make_session()
    # The winner has spent the token but not committed: a late reader still sees it unused.
    won = refresh_session(
        winner,
        pair.refresh_token,
        settings=app_token_settings(app),
        refresh_ttl_seconds=3600,
        reuse_grace_seconds=GRACE_SECONDS,
        now=utcnow(),
    )
    outcome: list[tuple[str, str]] = []

    def late_refresh() -> None:
        with make_session() as session:
            outcome.append(_attempt(app, session, pair.refresh_token))

    late = threading.Thread(target=late_refresh)
    late.start()
    wait_for_a_lock_wait(make_session.kw["bind"])

    winner.commit()
    winner.close()
    late.join(timeout=10)

    assert outcome == [("ok", won.refresh_token)]


@on_postgres
def test_a_refresh_racing_a_winner_that_rolls_back_takes_the_token_itself(
    app: Flask, committed_login: tuple[sessionmaker[Session], TokenPair]
) -> None:
    make_session, pair = committed_login
    winner = make_session()
    refresh_session(
        winner,
        pair.refresh_token,
        settings=app_token_settings(app),
        refresh_ttl_seconds=3600,
        reuse_grace_seconds=GRACE_SECONDS,
        now=utcnow(),
    )
    outcome: list[tuple[str, str]] = []

    def late_refresh() -> None:
        with make_session() as session:
            outcome.append(_attempt(app, session, pair.refresh_token))

    late = threading.Thread(target=late_refresh)
    late.start()
    wait_for_a_lock_wait(make_session.kw["bind"])
    winner.rollback()  # the winner's request failed after claiming: nothing was handed out
    winner.close()
    late.join(timeout=10)

    assert len(outcome) == 1 and outcome[0][0] == "ok"
    with make_session() as check:
        family = check.get(LoginFamily, pair.family_id)
        assert family is not None and family.revoked_at is None

"""Parallel password guesses on real PostgreSQL connections: none slips past the lockout."""

from __future__ import annotations

import os
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
from app.identity import staff as staff_service
from app.identity.errors import KeepsWrites
from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant
from tests.factories.staff import TEST_HASHER

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
        reason="needs PostgreSQL: real parallel connections and row locks",
    ),
]

MAX_FAILURES = 5
RACERS = 9


@pytest.fixture
def committed_account(app: Flask, database_url: str) -> Iterator[tuple[sessionmaker[Session], int]]:
    """A committed staff account on a separate engine; removed with its audit entries."""
    engine = make_engine(database_url)
    make_session = sessionmaker(bind=engine, expire_on_commit=False)
    with make_session() as setup:
        account = StaffAccount(
            username=f"race.{uuid.uuid4().hex[:10]}",
            display_name="并发测试",
            password_hash=TEST_HASHER.hash("Right-password-1"),
            grants=[StaffRoleGrant(role=StaffRole.ADMIN)],
        )
        setup.add(account)
        setup.commit()
        account_id = account.id
    try:
        yield make_session, account_id
    finally:
        with make_session() as cleanup:
            cleanup.execute(delete(StaffAccount).where(StaffAccount.id == account_id))
            # Nothing seals in tests (manual job runner): this test's entries are the unsealed ones.
            cleanup.execute(delete(AuditEntry).where(AuditEntry.seq.is_(None)))
            cleanup.commit()
        engine.dispose()


def test_parallel_wrong_passwords_lock_the_account_once_and_lose_no_count(
    committed_account: tuple[sessionmaker[Session], int],
) -> None:
    make_session, account_id = committed_account
    with make_session() as read:
        username = read.get_one(StaffAccount, account_id).username
    start = threading.Barrier(RACERS)

    def guess(_: int) -> str:
        with make_session() as session:
            start.wait()
            try:
                staff_service.authenticate(
                    session, username, "Wrong-password-1", now=utcnow(),
                    max_failures=MAX_FAILURES, lockout_minutes=15,
                )  # fmt: skip
            except DomainError as error:
                # As the login view does: keep the bookkeeping of a failed attempt.
                if isinstance(error, KeepsWrites):
                    session.commit()
                return error.code
            session.commit()
            return "ok"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(guess, range(RACERS)))

    # Each guess that was counted reached the counter: exactly MAX_FAILURES - 1 plain failures
    # before the lock, whatever the interleaving; every later one meets the lock.
    assert outcomes.count("LOGIN_FAILED") == MAX_FAILURES - 1, outcomes
    assert outcomes.count("ACCOUNT_LOCKED") == RACERS - MAX_FAILURES + 1, outcomes
    with make_session() as check:
        account = check.get_one(StaffAccount, account_id)
        assert account.locked_until is not None and account.locked_until > utcnow()
        assert account.failed_logins == 0
        locks = check.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "staff.locked", AuditEntry.subject_id == str(account_id)
            )
        ).all()
        assert len(locks) == 1

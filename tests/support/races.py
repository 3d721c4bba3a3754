"""Support for tests that race requests on real parallel connections.

Unlike the rest of the suite such tests commit: the racers are separate connections, which
cannot see the usual rolled-back test transaction. A module imports `committing_session` from
here: the `session` fixture of its tests then commits (instead of tests/conftest.py's rolled-back
one), and every row the test added is
removed afterwards (the rows of the freshly migrated schema are recorded first), so the other
tests still find an empty database.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, delete, select, text, tuple_
from sqlalchemy.orm import Session

from app.db import Base, get_session
from tests.support import database as test_database

on_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL: holds one transaction open while another request waits on its "
    "row lock (seen in pg_stat_activity); SQLite runs one writer at a time (BEGIN IMMEDIATE)",
)

RACERS = 6

Rows = dict[str, set[tuple[Any, ...]]]


def _rows(engine: Engine) -> Rows:
    """The primary keys of every table's rows."""
    with engine.connect() as connection:
        return {
            table.name: set(connection.execute(select(*table.primary_key.columns)).all())
            for table in Base.metadata.sorted_tables
        }


def _remove_rows_added_since(engine: Engine, before: Rows) -> None:
    after = _rows(engine)
    with engine.begin() as connection:
        # Referring rows before the rows they refer to.
        for table in reversed(Base.metadata.sorted_tables):
            added = sorted(after[table.name] - before[table.name])
            if added:
                key = tuple_(*table.primary_key.columns)
                for start in range(0, len(added), 500):
                    connection.execute(delete(table).where(key.in_(added[start : start + 500])))


@pytest.fixture(name="session")
def committing_session(app: Flask) -> Iterator[Session]:
    """A session that commits (overrides the rolled-back one of tests/conftest.py), cleaned up
    after the test. Requests from the test's thread share it, as usual; requests from other
    threads have their own app context, so their own session and connection."""
    database = app.extensions["db"]
    engine = database.engine
    # The app's own sessions, on the engine, joining as SQLAlchemy does by default.
    database.sessionmaker.configure(bind=engine, join_transaction_mode="conditional_savepoint")
    before = _rows(engine)
    try:
        with app.app_context():
            yield get_session()
    finally:
        _remove_rows_added_since(engine, before)
        test_database.forget_remembered_rows(app)


def headers_committed(session: Session, citizen_headers, user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The user's headers, the login committed for the other threads' connections."""
    headers: dict[str, str] = citizen_headers(user)
    session.commit()
    return headers


def race(app: Flask, method: str, path: str, headers, bodies: list[Any]) -> list[Any]:  # type: ignore[no-untyped-def]
    """The same request from len(bodies) threads at once, each its own client, app context,
    session and connection; their answers (status, JSON)."""
    start = threading.Barrier(len(bodies))

    def racer(body: Any) -> tuple[int, Any]:
        client = app.test_client()
        start.wait(timeout=30)
        answer = client.open(path, method=method, json=body, headers=headers)
        return answer.status_code, answer.json

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(racer, bodies))


def one_won(answers: list[Any], refusal: str) -> Any:
    """Exactly one racer was answered 200 and every other 409 `refusal` with a message (never a
    500); returns the winner's body."""
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * (len(answers) - 1), answers
    for status, body in answers:
        if status == 409:
            assert body["code"] == refusal and body["message"], body
    [won] = [body for status, body in answers if status == 200]
    return won


def wait_for_a_lock_wait(engine: Engine) -> None:
    """Return once a connection to the test's database waits on a lock (PostgreSQL)."""
    with engine.connect() as probe:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
            if waiting:
                return
            probe.rollback()
            time.sleep(0.02)
    raise AssertionError("the late request never waited for the first one's row lock")


def behind_an_uncommitted(
    app: Flask, first_step: Callable[[Session], None], late: Callable[[], Any]
) -> Any:
    """`late` (a request) runs in another thread while `first_step` has written in a transaction
    not yet committed; it must wait for that transaction (PostgreSQL: seen waiting on a row
    lock), which then commits. Returns the late request's answer."""
    engine = app.extensions["db"].engine
    first = Session(engine, expire_on_commit=False)
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(late()))
    try:
        with app.test_request_context():
            first_step(first)
        thread.start()
        try:
            wait_for_a_lock_wait(engine)
        finally:
            first.commit()
            thread.join(timeout=30)
    finally:
        first.close()  # never leave a transaction holding locks: the clean-up would wait
    [answer] = outcome
    return answer

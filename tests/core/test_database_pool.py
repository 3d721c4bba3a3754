"""The pool hands out live connections without a round trip per checkout (app/db.py)."""

from __future__ import annotations

import os
import time

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL: a server-side connection to terminate",
)


def _libpq_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    """Terminate a backend and wait until it is gone (its farewell is then on the socket)."""
    with psycopg.connect(_libpq_url(database_url), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not go"
            time.sleep(0.02)


def test_a_pooled_connection_the_server_terminated_is_replaced_at_checkout(
    database_url: str,
) -> None:
    """pg_terminate_backend (or a restart) on an idle pooled connection: the next request
    gets a fresh connection instead of a 503 DATABASE_UNAVAILABLE."""
    engine = make_engine(database_url)
    try:
        pid = _backend_pid(engine)
        _terminate(database_url, pid)

        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()


def test_a_replacement_terminated_as_it_opens_fails_as_a_lost_connection(
    database_url: str,
) -> None:
    """An operator's sweep of every connection can end the one a checkout has just opened in
    place of a terminated one. SQLAlchemy replaces a connection once per checkout: a second
    refusal made it give up with InvalidRequestError ("This connection is closed"), a 500 to
    the citizen (make test-prod saw one). A connection opened by this checkout is handed out
    unasked; if it is dead, its first statement says so as a lost connection (the 503 a
    client retries)."""
    engine = make_engine(database_url)
    try:
        pid = _backend_pid(engine)
        _terminate(database_url, pid)
        opened: list[int] = []

        def terminate_the_first_replacement(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            opened.append(dbapi_connection.info.backend_pid)
            if len(opened) == 1:
                _terminate(database_url, opened[0])

        event.listen(engine.pool, "connect", terminate_the_first_replacement)
        with pytest.raises(DBAPIError) as lost:
            _backend_pid(engine)
        assert lost.value.connection_invalidated
        assert len(opened) == 1

        assert _backend_pid(engine) not in (pid, opened[0])
    finally:
        engine.dispose()


def test_a_healthy_pooled_connection_is_handed_out_again(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert _backend_pid(engine) == _backend_pid(engine)
    finally:
        engine.dispose()

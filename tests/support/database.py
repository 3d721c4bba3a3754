"""Building the test schema from the project's migrations, as production does; tests inside one
transaction that is rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from flask import Flask
from sqlalchemy import Connection, Engine, event, text

from app.db import Base
from app.migrations_cli import upgrade_database
from app.models import import_all_models


def build_schema(app: Flask) -> None:
    """Drop whatever a previous run left and migrate an empty database to head."""
    import_all_models()
    engine = app.extensions["db"].engine
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade_database(app)


@contextmanager
def outer_transaction(app: Flask) -> Iterator[Connection]:
    """The app's sessions join one connection's transaction, rolled back when the block ends.

    What they commit inside is only released savepoints, so to the app it looks committed, and
    the app remembers some of it: a policy's criteria by (policy id, version). The rollback
    then frees those ids for the next test's rows, so the app forgets what it remembered too.
    """
    database = app.extensions["db"]
    connection = database.engine.connect()
    outer = connection.begin()
    database.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield connection
    finally:
        # Back to the engine, and to SQLAlchemy's default way of joining.
        database.sessionmaker.configure(
            bind=database.engine, join_transaction_mode="conditional_savepoint"
        )
        outer.rollback()
        connection.close()
        forget_remembered_rows(app)


def forget_remembered_rows(app: Flask) -> None:
    """Empty what the app remembers of rows by their ids (a policy's criteria by policy id and
    version), once a test has undone those rows: the next test's rows may get the same ids."""
    app.extensions["policy_criteria"].clear()


class Sent(NamedTuple):
    statement: str
    parameters: Any


@contextmanager
def statements_sent(engine: Engine) -> Iterator[list[Sent]]:
    """The SQL statements `engine` sends inside the block, in order, each with its parameters
    as the driver got them (the list fills as it runs)."""
    sent: list[Sent] = []

    def record(*args: Any) -> None:
        sent.append(Sent(args[2], args[3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)

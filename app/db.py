"""Database plumbing: the declarative Base, reusable column types, one session per app context.

Plain SQLAlchemy 2.0 (not Flask-SQLAlchemy): sessions are easy to type and to bind to an outer
transaction in tests. Services flush; only the request layer (or a CLI command, or a job)
commits.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Generic, ParamSpec, TypeVar, cast

from flask import Flask, current_app, g
from sqlalchemy import (
    BigInteger,
    CursorResult,
    DateTime,
    Engine,
    Enum,
    Integer,
    MetaData,
    Result,
    String,
    create_engine,
    event,
    func,
)
from sqlalchemy import inspect as sa_inspect  # `select` here is the socket module's
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones, so values are stored as naive UTC there and made aware again on
    load; PostgreSQL gets `timestamptz`. Naive datetimes are refused so local times never slip in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

intpk = Annotated[int, mapped_column(BigIntPK, primary_key=True)]
str32 = Annotated[str, mapped_column(String(32))]
str64 = Annotated[str, mapped_column(String(64))]
str128 = Annotated[str, mapped_column(String(128))]
str255 = Annotated[str, mapped_column(String(255))]
created_at = Annotated[
    dt.datetime, mapped_column(UTCDateTime(), server_default=func.now(), nullable=False)
]


def str_enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    """An enum column stored by value as a plain string: readable in SQL, no native type to
    migrate, the same on SQLite and PostgreSQL."""
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime(), int: BigIntPK}


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class Database:
    """The engine and session factory of one app."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.engine: Engine = make_engine(url, echo=echo)
        self.sessionmaker: sessionmaker[Session] = sessionmaker(
            bind=self.engine, expire_on_commit=False
        )


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine with the per-backend settings this project relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    # No ping on every checkout (pool_pre_ping): a busy worker would pay a round trip per
    # request for connections it used a moment ago. A pooled connection is pinged only when
    # its socket has something to read while nothing was asked (the server said goodbye:
    # pg_terminate_backend, a restart) or when it sat idle a while (a silent network cut, an
    # idle-connection timeout); connections are replaced after pool_recycle whatever happens.
    # A connection that dies under a request anyway gives the documented 503
    # (blueprints/errors.py), and SQLAlchemy then recycles every connection of the pool
    # opened before the loss.
    engine = create_engine(
        url, echo=echo, pool_size=10, max_overflow=20, pool_recycle=POOL_RECYCLE_SECONDS
    )
    event.listen(engine.pool, "checkin", _note_idle_since)
    event.listen(engine.pool, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


# A pooled connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0
POOL_RECYCLE_SECONDS = 1800
_IDLE_SINCE = "idle_since"


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.pop(_IDLE_SINCE, None)
    if idle_since is None:
        # Never checked in: this checkout has just opened it (the record's info is cleared
        # with each new connection). SQLAlchemy replaces a connection only once per checkout
        # and gives up with InvalidRequestError (a 500) on a second refusal, so one opened in
        # place of a dead one goes out unasked; if a sweep of connections ended it already,
        # its first statement fails as a lost connection (the documented 503).
        return
    idle_long = time.monotonic() - idle_since >= PING_AFTER_IDLE_SECONDS
    if not idle_long and not _server_spoke_unasked(dbapi_connection):
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as error:
        # The pool discards this connection and checks out another (a fresh one if need be).
        raise DisconnectionError("pooled connection lost while idle") from error


def _server_spoke_unasked(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket is readable: a closed socket (EOF) or the server's
    farewell (FATAL on termination), or a stray notice. One poll, no round trip."""
    try:
        descriptor = dbapi_connection.fileno()
    except Exception:  # a closed connection: let the ping find out
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite delays BEGIN until the first write, so a SAVEPOINT taken before it commits on
    # its own; SQLAlchemy's recipe: let the driver do nothing and emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    # WAL lets readers proceed while one writer writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # In WAL mode NORMAL loses at most the last commits on power loss, never consistency;
    # FULL would fsync on every commit. Production durability is PostgreSQL's job.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: a transaction that reads and then writes would
    # otherwise fail with SQLITE_BUSY when another writer committed in between, instead of
    # waiting its turn. SQLite has one writer at a time anyway; PostgreSQL is for throughput.
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return  # probes and other one-statement reads need no transaction, nor its lock
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask) -> Database:
    """Attach a Database to the app and close each context's session at teardown."""
    database = Database(app.config["DATABASE_URL"])
    app.extensions["db"] = database
    app.teardown_appcontext(_close_session)
    return database


def insert_on_conflict(dialect: str) -> Callable[..., postgresql.Insert]:
    """The dialect's own INSERT, the one that knows ON CONFLICT (PostgreSQL and SQLite alike).

    Typed as PostgreSQL's: SQLite's has the same on_conflict_do_nothing/do_update.
    """
    if dialect == "postgresql":
        return postgresql.insert
    return cast(Callable[..., postgresql.Insert], sqlite.insert)


_KEYWORDS = object()


class built_once(Generic[P, R]):
    """`functools.cache` for the builders of SQL statements, one object for every thread.

    SQLAlchemy compiles a statement once per shape (its cache key) and keeps the statement
    object that compiled first; an execute of another object of the same shape pays for a
    mapping of the compiled result columns onto its own, on every call
    (`CursorResultMetaData._adapt_to_context`). With `functools.cache`, threads that race on
    a builder's first call (a worker's threads on its first requests) each build and run an
    object of their own, and the one the cache keeps may not be the one that compiled: measured
    at 4 % of a take's CPU for the rest of the process's life. Here the first build is made
    under a lock and every caller gets the object it made; later calls read a dict, lock-free.
    """

    def __init__(self, builder: Callable[P, R]) -> None:
        self._builder = builder
        self._built: dict[Any, R] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, builder)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        # As functools does: a marker between the positional and keyword arguments, so no
        # call's key can pass for another's.
        key = (*args, _KEYWORDS, *sorted(kwargs.items())) if kwargs else args
        try:
            return self._built[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._built:
                self._built[key] = self._builder(*args, **kwargs)
            return self._built[key]

    def cache_clear(self) -> None:
        with self._lock:
            self._built.clear()


def get_db() -> Database:
    database: Database = current_app.extensions["db"]
    return database


# session.info key: rows read ahead for later `session.get`s of the same session (see `hold`).
_HELD = "db.held"


def hold(session: Session, *rows: object) -> None:
    """Keep `rows` in the session's identity map for as long as the session lives.

    The identity map holds unchanged rows weakly: a row read ahead (several in one statement,
    for the reads that follow) is only found by a later `session.get` while something still
    refers to it. Sessions live for one request or one job, and so do these references."""
    session.info.setdefault(_HELD, []).extend(row for row in rows if row is not None)


def get_session() -> Session:
    """The session of the current app context, created on first use."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    session: Session = g.db_session
    return session


def use_statement_session() -> Session:
    """Make this app context's session one whose statements each commit by themselves, on
    PostgreSQL (autocommit): no BEGIN and COMMIT round trips, and a row lock a write takes ends
    with its statement instead of a round trip after the caller has its answer. Only for work
    whose every write is one statement that stands on its own (the citizen's take: one
    statement draws the number and writes the ticket and its transition). Elsewhere, or when
    the sessions are bound to a connection of the caller's (tests' outer transaction), the
    session is the usual one, and so is a session the context already has (a test's app
    context serving its requests in the test's transaction)."""
    if "db_session" in g:
        return get_session()
    factory = get_db().sessionmaker
    bind = factory.kw.get("bind")
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        g.db_session = factory(bind=_autocommit_engine(bind))
    else:
        g.db_session = factory()
    session: Session = g.db_session
    return session


@functools.cache
def _autocommit_engine(engine: Engine) -> Engine:
    # The same engine and pool; the connection is put in autocommit at checkout and back at
    # checkin, on the driver's side alone (psycopg sends nothing for either).
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _close_session(_exc: BaseException | None) -> None:
    # Closing rolls back whatever a failed request left uncommitted.
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.close()
    except DBAPIError:
        # The connection died under the request (database restarted, connection killed): the
        # answer is already made, so the rollback's failure must not replace it with a 500
        # page. The pool discards the dead connection.
        log.warning("database connection lost at request teardown", exc_info=True)
        session.invalidate()


def lock_row(session: Session, row: Any) -> None:
    """Hold `row`'s database row until the transaction ends (SELECT ... FOR UPDATE), and read
    it afresh into the same object: it may have been read before the wait, and a writer that
    went first has since changed it. On SQLite, where FOR UPDATE is not rendered, transactions
    already take turns (BEGIN IMMEDIATE). One statement."""
    session.get(
        type(row),
        sa_inspect(row).identity,
        with_for_update=True,
        populate_existing=True,
    )


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT changed.

    `Session.execute` is typed as returning `Result`, which has no row count; for those
    statements it returns a `CursorResult`, which does. The one cast of the project.
    """
    return int(cast(CursorResult[Any], result).rowcount)

"""Access-token caches that let every process of the app share one token.

WeChat hands out one stable access token per app; when many workers each fetched their
own at expiry they would hammer the API, and a forced refresh by one would invalidate
the token the others hold. So a refresh happens under a lock shared by all processes
using the same cache: whoever gets the lock first fetches, the others re-read its result.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis import Redis
from redis.exceptions import LockError
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from wechat.errors import TokenLockTimeout

log = logging.getLogger(__name__)

TOKEN_TABLE_NAME = "wechat_access_tokens"  # nosec B105  # a table name, not a password


@dataclass(frozen=True)
class AccessToken:
    """An access token and the moment (epoch seconds, by the client's clock) it expires."""

    value: str
    expires_at: float

    def __repr__(self) -> str:
        # The token grants API access for two hours: keep it out of logs and tracebacks.
        return f"AccessToken(value='{self.value[:6]}…', expires_at={self.expires_at})"


class TokenCache(Protocol):
    """Where the access token of one app is kept, and the lock that guards its refresh."""

    def load(self) -> AccessToken | None:
        """Return the stored token, fresh or not, without taking the lock."""
        ...

    def refresh(
        self, fetch: Callable[[], AccessToken], *, is_fresh: Callable[[AccessToken], bool]
    ) -> AccessToken:
        """Under the shared lock: return the stored token if `is_fresh`, else fetch and store."""
        ...


class MemoryTokenCache:
    """A token cache for one process (the emulator, tests, scripts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def load(self) -> AccessToken | None:
        """Return the stored token, fresh or not."""
        return self._token

    def refresh(
        self, fetch: Callable[[], AccessToken], *, is_fresh: Callable[[AccessToken], bool]
    ) -> AccessToken:
        """Return the stored token if fresh, else fetch and store one; one thread at a time."""
        with self._lock:
            current = self._token
            if current is not None and is_fresh(current):
                return current
            self._token = fetch()
            return self._token


class RedisTokenCache:
    """A token cache in Redis, refreshed under a redis-py `Lock`."""

    def __init__(
        self,
        redis_client: Redis,
        key_prefix: str = "wechat:access_token",
        *,
        appid: str | None = None,
        lock_timeout: float = 30.0,
        blocking_timeout: float = 30.0,
    ) -> None:
        self._redis = redis_client
        # Pass appid when several apps share one Redis; without it the prefix is the key.
        self._key = f"{key_prefix}:{appid}" if appid else key_prefix
        self._lock_key = f"{self._key}:lock"
        # lock_timeout must outlast a whole fetch (with its retries), or a second process
        # could take the lock while the first is still fetching.
        self._lock_timeout = lock_timeout
        self._blocking_timeout = blocking_timeout

    def load(self) -> AccessToken | None:
        """Return the stored token, fresh or not."""
        raw = self._redis.get(self._key)
        if raw is None:
            return None
        stored = json.loads(raw)
        return AccessToken(value=stored["value"], expires_at=float(stored["expires_at"]))

    def refresh(
        self, fetch: Callable[[], AccessToken], *, is_fresh: Callable[[AccessToken], bool]
    ) -> AccessToken:
        """Return the stored token if fresh, else fetch and store one, under the Redis lock."""
        lock = self._redis.lock(
            self._lock_key, timeout=self._lock_timeout, blocking_timeout=self._blocking_timeout
        )
        if not lock.acquire():
            raise TokenLockTimeout(f"no access-token lock within {self._blocking_timeout}s")
        try:
            current = self.load()
            if current is not None and is_fresh(current):
                return current
            token = fetch()
            # No Redis expiry: freshness is judged by the client's clock and margin, and one
            # small key per app needs no cleaning.
            self._redis.set(
                self._key, json.dumps({"value": token.value, "expires_at": token.expires_at})
            )
            return token
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("access-token lock expired before release; raise lock_timeout")


def define_token_table(metadata: MetaData) -> Table:
    """Add the `wechat_access_tokens` table, one row per appid, to the given metadata."""
    return Table(
        TOKEN_TABLE_NAME,
        metadata,
        Column("appid", String(64), primary_key=True),
        Column("value", Text, nullable=True),
        Column("expires_at", Float, nullable=False, default=0.0),
        # Bumped by every refresh; the UPDATE that bumps it is what takes the lock.
        Column("lock_version", Integer, nullable=False, default=0),
    )


class SqlTokenCache:
    """A token cache in a SQL table, locked by an UPDATE of the app's row.

    One code path serves SQLite and PostgreSQL: inside one transaction, an UPDATE of the
    row takes PostgreSQL's row lock and SQLite's RESERVED write lock, both held to commit,
    so a second process blocks on that UPDATE until the first has stored its new token,
    then re-reads it. It needs READ COMMITTED (PostgreSQL's default) so that re-read sees
    the other commit; on SQLite the connect timeout must outlast one fetch.
    """

    def __init__(self, engine: Engine, table: Table, *, appid: str = "default") -> None:
        # Pass the real appid when several apps share the table; one app may keep the default.
        self._engine = engine
        self._table = table
        self._appid = appid

    def load(self) -> AccessToken | None:
        """Return the stored token, fresh or not."""
        with self._engine.connect() as conn:
            return self._read(conn)

    def refresh(
        self, fetch: Callable[[], AccessToken], *, is_fresh: Callable[[AccessToken], bool]
    ) -> AccessToken:
        """Return the stored token if fresh, else fetch and store one, under the row lock."""
        table = self._table
        mine = table.c.appid == self._appid
        # The row is created on first use. Creating it in its own transaction (rather than
        # before the UPDATE in the same one) keeps a lost insert race from aborting the
        # locking transaction on PostgreSQL, without needing savepoints on SQLite.
        for _ in range(2):
            with self._engine.begin() as conn:
                bumped = conn.execute(
                    update(table).where(mine).values(lock_version=table.c.lock_version + 1)
                )
                if bumped.rowcount:
                    current = self._read(conn)
                    if current is not None and is_fresh(current):
                        return current
                    token = fetch()
                    conn.execute(
                        update(table)
                        .where(mine)
                        .values(value=token.value, expires_at=token.expires_at)
                    )
                    return token
            self._create_row()
        raise RuntimeError(f"{table.name} row for {self._appid} vanished while locking it")

    def _read(self, conn: Connection) -> AccessToken | None:
        table = self._table
        row = conn.execute(
            select(table.c.value, table.c.expires_at).where(table.c.appid == self._appid)
        ).first()
        if row is None or row.value is None:
            return None
        return AccessToken(value=row.value, expires_at=row.expires_at)

    def _create_row(self) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(self._table).values(
                        appid=self._appid, value=None, expires_at=0.0, lock_version=0
                    )
                )
        except IntegrityError:
            pass  # another process created it first; either way the row now exists

"""Two processes that need a token at the same moment cause one fetch, not two."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import MetaData, create_engine, text

from tests.support.wechat import DevApi, race_for_token
from wechat.tokens import define_token_table

pytestmark = pytest.mark.slow

RACERS = 2


def race(emu_url: str, dev: DevApi, cache_spec: tuple[str, ...]) -> list[str]:
    """Start the racers together; return the tokens they got."""
    # A slow stable_token keeps the first fetch in flight while the second racer arrives.
    dev.fault("stable_token", delay=0.5, times=RACERS)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(RACERS)
    results = context.Queue()
    racers = [
        context.Process(target=race_for_token, args=(emu_url, cache_spec, start, results))
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    try:
        outcomes = [results.get(timeout=90) for _ in racers]
    finally:
        for racer in racers:
            racer.join(timeout=30)
    assert all(status == "ok" for status, _ in outcomes), outcomes
    assert all(racer.exitcode == 0 for racer in racers)
    return [token for _, token in outcomes]


def assert_one_fetch(tokens: list[str], dev: DevApi) -> None:
    assert len(set(tokens)) == 1
    assert dev.calls("stable_token") == 1
    assert dev.stats()["tokens_issued"] == 1


def test_processes_sharing_a_sqlite_cache_fetch_once(
    emu_url: str, dev: DevApi, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    metadata = MetaData()
    define_token_table(metadata)
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()

    tokens = race(emu_url, dev, ("sql", url, ""))

    assert_one_fetch(tokens, dev)


@pytest.fixture
def postgres_schema() -> Iterator[tuple[str, str]]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    schema = f"wechat_race_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    metadata = MetaData(schema=schema)
    define_token_table(metadata)
    metadata.create_all(engine)
    try:
        yield url, schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.mark.postgres
def test_processes_sharing_a_postgres_cache_fetch_once(
    emu_url: str, dev: DevApi, postgres_schema: tuple[str, str]
) -> None:
    url, schema = postgres_schema

    tokens = race(emu_url, dev, ("sql", url, schema))

    assert_one_fetch(tokens, dev)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    redis = Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
    try:
        redis.ping()
    except RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"test:wechat-race:{uuid.uuid4().hex}"
    yield prefix
    for key in redis.scan_iter(f"{prefix}*"):
        redis.delete(key)


def test_processes_sharing_a_redis_cache_fetch_once(
    emu_url: str, dev: DevApi, redis_prefix: str
) -> None:
    tokens = race(emu_url, dev, ("redis", "redis://127.0.0.1:6379/0", redis_prefix))

    assert_one_fetch(tokens, dev)

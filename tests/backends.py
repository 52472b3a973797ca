"""Which database and broker the suite runs against, and fresh databases for it.

PARLEY_TEST_BACKEND=sqlite (default): a SQLite file per server + memory://.
PARLEY_TEST_BACKEND=postgres: a fresh PostgreSQL database per server (created
and dropped here) + the broker in PARLEY_TEST_BROADCAST_URL (redis://127.0.0.1:6379
by default). Under CI=true an unreachable service fails the run instead of
skipping it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

BACKEND = os.environ.get("PARLEY_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "PARLEY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def on_postgres() -> bool:
    return BACKEND == "postgres"


def unavailable(what: str, error: Exception) -> None:
    message = f"{what} is unreachable: {error}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _admin(statement: str) -> None:
    """Run one statement on the admin database, from sync or async code alike."""
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    # A thread of its own, so that this works inside a running event loop too.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()


def create_pg_database() -> str:
    """A new, empty PostgreSQL database; its SQLAlchemy URL."""
    name = f"parley_test_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except (OSError, Exception) as error:  # asyncpg raises many kinds
        unavailable("PostgreSQL", error)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:
        unavailable("Redis", error)


@contextmanager
def database(tmp: Path) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, BROADCAST_URL) for one server, cleaned up afterwards."""
    if on_postgres():
        check_redis()
        url = create_pg_database()
        try:
            yield url, REDIS_URL
        finally:
            drop_pg_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp / 'parley.db'}", "memory://"

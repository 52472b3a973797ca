"""The embedded SQLite connection runs its statements on the event loop's thread
(db/sqlite_inline.py), and still behaves as aiosqlite's: errors, isolation
levels, another writer's lock, closing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.sqlite_inline import InlineConnection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (x INTEGER UNIQUE)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def driver_connection(engine: AsyncEngine) -> InlineConnection:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
    assert isinstance(driver, InlineConnection)
    return driver


async def test_statements_run_on_the_loop_thread(engine: AsyncEngine) -> None:
    # given a function that tells which thread SQLite calls it on
    driver = await driver_connection(engine)
    await driver.create_function("thread_id", 0, threading.get_ident)
    # when
    async with engine.connect() as connection:
        thread = (await connection.execute(text("SELECT thread_id()"))).scalar_one()
    # then: this thread, not aiosqlite's
    assert thread == threading.get_ident()


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(
    engine: AsyncEngine,
) -> None:
    # given
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t VALUES (1)"))
    # when / then
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (1)"))
    # and the connection is usable again, the failed transaction rolled back
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_an_isolation_level_is_set_and_reset(engine: AsyncEngine) -> None:
    # given: SQLAlchemy sets the level through aiosqlite's own thread
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        # when
        await asyncio.wait_for(autocommit.execute(text("INSERT INTO t VALUES (2)")), 10)
    # then: written without a commit, and the next transaction is one again
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO t VALUES (3)"))
        await connection.rollback()
        rows = (await connection.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all()
    assert rows == [2]


async def test_a_write_waits_for_another_writers_lock(engine: AsyncEngine, tmp_path: Path) -> None:
    # given another connection (another process, say the CLI) holding the write lock
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (10)")
    release = threading.Timer(0.3, other.execute, args=("COMMIT",))
    release.start()
    try:
        # when this engine writes meanwhile
        started = time.monotonic()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (11)"))
        waited = time.monotonic() - started
    finally:
        release.join()
        other.close()
    # then it waited for the lock rather than failing with "database is locked"
    assert waited >= 0.2
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all()
    assert rows == [10, 11]


async def test_disposing_closes_the_connection_and_ends_its_thread(
    engine: AsyncEngine,
) -> None:
    # given
    before = set(threading.enumerate())
    driver = await driver_connection(engine)
    started = set(threading.enumerate()) - before
    # when
    await engine.dispose()
    # then
    for thread in started:
        thread.join(5)
        assert not thread.is_alive()
    with pytest.raises(ValueError, match="no active connection"):
        await driver.execute("SELECT 1")


async def test_a_failed_connect_leaves_no_thread_behind(tmp_path: Path) -> None:
    # given a database file that cannot be opened
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'inline.db'}")
    before = set(threading.enumerate())
    try:
        # when connecting fails, again and again
        for _ in range(3):
            with pytest.raises(OperationalError):
                async with engine.connect():
                    pass
    finally:
        await engine.dispose()
    # then no worker thread is left waiting
    for thread in set(threading.enumerate()) - before:
        thread.join(5)
        assert not thread.is_alive()

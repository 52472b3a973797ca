"""The engine and its sessions, tuned per backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.sqlite_inline import inline_creator


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    options: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        # SQLite allows one writer at a time. A single pooled connection makes
        # requests queue in the event loop instead of failing with "database
        # is locked"; WAL keeps the file readable by outside tools meanwhile.
        options.update(pool_size=1, max_overflow=0, pool_timeout=60)
        if make_url(url).get_driver_name() == "aiosqlite":
            # That one connection runs its statements on the loop's thread
            # (db/sqlite_inline.py), not through a thread of its own. The
            # loop then waits out another process's write lock (busy_timeout),
            # so never open a second engine on the same file in this loop: a
            # write through it would wait for a lock the first cannot release.
            options["async_creator"] = inline_creator(url)
    else:
        options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **options)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

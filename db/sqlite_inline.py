"""aiosqlite's connection, each call run on the event loop's own thread.

aiosqlite runs every sqlite3 call on a thread of its own and hands the
result back through the loop: four round trips per statement (cursor,
execute, fetchall, close). Parley keeps one SQLite connection per process,
so statements already run one at a time, and a statement on the local file
takes microseconds, less than a round trip. This class runs them inline.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.engine import make_url


class InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        # Kept for SQLAlchemy's isolation-level setter, which queues a call
        # to it directly; it must not hold the interpreter open at exit.
        self._thread.daemon = True

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            try:
                self._connection = self._connector()
            except BaseException:
                self.stop()  # its thread, started by __await__
                raise
        return self


def inline_creator(url: str) -> Callable[[], Awaitable[InlineConnection]]:
    """An ``async_creator`` for ``create_async_engine``: the URL's own connect arguments."""
    parsed = make_url(url)
    args, options = parsed.get_dialect()().create_connect_args(parsed)
    # SQLAlchemy sets the isolation level through aiosqlite's thread.
    options["check_same_thread"] = False

    async def connect() -> InlineConnection:
        connection = InlineConnection(partial(sqlite3.connect, *args, **options), 64)
        await connection
        return connection

    return connect

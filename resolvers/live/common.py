"""What every stream shares: going live, a bounded inbox, and ending a slow listener."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Generic, TypeVar

from db import users as user_queries
from db.models import UserRow
from resolvers.context import Context
from schema.errors import RateLimited

T = TypeVar("T")


class TooSlow(RateLimited):
    """The listener fell further behind than the server keeps for it."""


def too_slow(cursor: int | None) -> TooSlow:
    if cursor is None:
        return TooSlow("You fell too far behind; subscribe again.", reason="SLOW_CONSUMER")
    return TooSlow(
        f"You fell too far behind; subscribe again with afterSeq: {cursor}.",
        reason="SLOW_CONSUMER",
        resumeAfterSeq=cursor,
    )


# Called by go_live in the task whose stream it is (see sharing.deliver: a
# stream that went live moves to a task of its own); named weakly, as copies
# of the context may outlive the stream.
on_live: ContextVar[weakref.WeakMethod[Callable[[], None]] | None] = ContextVar(
    "parley_on_live", default=None
)


async def go_live(ctx: Context) -> None:
    """After the opening checks: release the session and the loaders, keep every later
    session short."""
    await ctx.db.close()
    ctx.db.keep_short()
    ctx.scope.fresh_loaders()
    hook = on_live.get()
    method = hook() if hook is not None else None
    if method is not None:
        method()


class Inbox(Generic[T]):
    """A bounded buffer for one listener; overflowing it ends that listener only."""

    def __init__(self, limit: int) -> None:
        self.items: deque[T] = deque()
        self.limit = limit
        self.overflowed = False
        self._ready = asyncio.Event()

    def put(self, item: T) -> None:
        if len(self.items) >= self.limit:
            self.overflowed = True
        else:
            self.items.append(item)
        self._ready.set()

    async def get(self) -> T:
        while not self.items:
            if self.overflowed:
                raise too_slow(None)
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            raise too_slow(None)
        return self.items.popleft()


def read_into(inbox: Inbox[T], read: Callable[[str], T | None]) -> Callable[[str], None]:
    """A broker handler putting each well-formed envelope, as ``read`` makes it, into inbox."""

    def handler(message: str) -> None:
        item = read(message)
        if item is not None:
            inbox.put(item)

    return handler


async def user_row(ctx: Context, user_id: int) -> UserRow | None:
    """One user, read for a stream between events (with a short session)."""
    async with ctx.services.short_session() as session:
        found = await user_queries.get_users(session, ids=[user_id])
    return found[0] if found else None

"""The per-request (or per-socket) context: services, and each operation's scope.

An operation's scope owns its session (``RequestDb``), its loaders and its
viewer. Writes go through ``RequestDb.transaction()``, the unit of work's
one owner. Long-lived streams read through ``Services.short_session()``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached
from strawberry.fastapi import BaseContext

from auth.tokens import TokenService
from db import auth_sessions, users
from db.models import UserRow
from resolvers.live.publisher import Publisher
from resolvers.live.snapshots import SharedEvent
from resolvers.loaders import Loaders
from resolvers.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from resolvers.live.broker import Broker
    from resolvers.live.feeds import Feeds
    from resolvers.live.presence import PresenceStore
from schema.errors import Unauthenticated

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """What lives as long as the process: built once by ``main.py``."""

    sessionmaker: async_sessionmaker[AsyncSession]
    tokens: TokenService
    broker: Broker
    publisher: Publisher
    feeds: Feeds
    presence: PresenceStore
    refresh_ttl: timedelta

    @asynccontextmanager
    async def short_session(self) -> AsyncIterator[AsyncSession]:
        """A session for one short use outside any operation's scope.

        Long-lived streams hold no session while they wait: each read they
        make between events opens one of these and closes it at once.
        """
        async with self.sessionmaker() as session:
            yield session

    async def mark_seen(self, user_ids: Sequence[int]) -> None:
        """Move the users' lastSeenAt to now (sockets opening, closing, or kept alive)."""
        async with self.short_session() as session:
            await users.set_last_seen(session, user_ids=user_ids, at=datetime.now(UTC))
            await session.commit()


class RequestDb:
    """One session per operation, used by one coroutine at a time.

    GraphQL resolves sibling fields concurrently and an AsyncSession allows
    one statement at a time, so every use goes through a lock.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        *,
        offer: Callable[[Sequence[SharedEvent]], None] = lambda _events: None,
        on_discard: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._publisher = publisher
        self._offer = offer
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._on_discard = on_discard
        self.short_lived = False

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._lock:
            try:
                yield self._current()
            finally:
                if self.short_lived:
                    await self._close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """The one owner of a write: commit on success, roll back on any error,
        and publish what the work enqueued only once it has committed."""
        async with self._lock:
            session = self._current()
            work = UnitOfWork(session)
            try:
                yield work
                await session.commit()
            except BaseException:
                # A failed flush or commit expires every row the session
                # holds, so the session is dropped with them, and so are the
                # loaders' caches that may hold such rows; the next use
                # starts afresh.
                await self._reset(session)
                raise
            # What was read before this write is stale now, in the loaders'
            # caches and in the session's identity map alike: the rest of the
            # operation (the result's fields, the next mutation of the same
            # document) reads afresh. Closing keeps loaded values readable.
            await self._reset(session)
        # This process's feeds take the new events as made; the envelopes
        # still go out, for other processes and as the feeds' own check.
        if work.snapshots:
            try:
                self._offer(work.snapshots)
            except Exception:  # the feeds read them back instead
                logger.exception("offering new events to this process's feeds failed")
        # Shielded: once committed, a client cancelling the operation (a
        # "complete" over the socket) must not keep the announcements back.
        await asyncio.shield(self._publisher.publish(*work.envelopes))

    async def _reset(self, session: AsyncSession) -> None:
        self._session = None
        await session.close()
        self._on_discard()

    def _current(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    @property
    def idle(self) -> bool:
        """No session open, nobody using or waiting for one."""
        return self._session is None and not self._lock.locked()

    def keep_short(self) -> None:
        """Close the session after every use: for streams that live long and wait a lot.

        A subscription's fields are resolved and then sent, and sending waits
        for the client; the connection must not be held meanwhile.
        """
        self.short_lived = True

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class OperationScope:
    """What one operation owns: its session, its loaders and its viewer.

    A WebSocket shares one Context between all the operations it carries,
    running concurrently; each operation's scope lives in a context variable
    of the task that runs it, so they never see each other's sessions.
    """

    def __init__(self, context: Context) -> None:
        self.context = context
        self._request_id: str | None = None
        # Made on first use, and dropped by a live stream (see shed).
        self._db: RequestDb | None = None
        self._short_lived = False
        self._viewer: UserRow | None = None
        # A live stream's viewer, as its column values only (see shed_viewer).
        self._shed_viewer: tuple[Any, ...] | None = None
        # Made on first use: a long-lived stream drops them once it is live
        # (see live/common.go_live) and many operations never need them.
        self._loaders: Loaders | None = None

    @property
    def viewer(self) -> UserRow | None:
        viewer = self._viewer
        if viewer is None and self._shed_viewer is not None:
            return _detached_user(self._shed_viewer)
        return viewer

    @viewer.setter
    def viewer(self, user: UserRow | None) -> None:
        self._viewer, self._shed_viewer = user, None

    @property
    def viewer_id(self) -> int | None:
        """The viewer's id, without making its row."""
        if self._viewer is not None:
            return self._viewer.id
        if self._shed_viewer is not None:
            shed_id: int = self._shed_viewer[_USER_ID_AT]
            return shed_id
        return None

    @property
    def db(self) -> RequestDb:
        db = self._db
        if db is None:
            services = self.context.services
            # Weakly: the scope holds its db, and a db holding the scope would
            # make the two (and the loaders with every row they cached) a
            # reference cycle that only the cyclic collector frees.
            fresh_loaders = weakref.WeakMethod(self.fresh_loaders)
            db = self._db = RequestDb(
                services.sessionmaker,
                services.publisher,
                offer=services.feeds.offer,
                on_discard=lambda: _call_if_alive(fresh_loaders),
            )
            db.short_lived = self._short_lived
        return db

    async def close_db(self) -> None:
        if self._db is not None:
            await self._db.close()

    def shed(self) -> None:
        """Keep only what a stream that lives long and seldom asks needs, per subscription.

        The viewer's ORM row (its SQLAlchemy state, its pydantic fields) is
        some 3 KB: only its values are kept, and whoever asks for the viewer
        (a rendering per viewer) gets a detached row made from them. An idle
        session holder goes too, made again if asked for.
        """
        viewer = self._viewer
        if viewer is not None:
            self._shed_viewer = tuple(getattr(viewer, name) for name in _USER_COLUMNS)
            self._viewer = None
        db = self._db
        if db is not None and db.idle:
            self._short_lived = db.short_lived
            self._db = None

    @property
    def request_id(self) -> str:
        """Names this operation in logs and masked errors (one socket carries many).

        Made when first asked for, which only an unexpected error does: uuid4
        reads the system's randomness, a few µs that most operations need not pay.
        """
        if self._request_id is None:
            self._request_id = uuid.uuid4().hex
        return self._request_id

    @property
    def loaders(self) -> Loaders:
        loaders = self._loaders
        if loaders is None:
            loaders = self._loaders = Loaders(self.db, self.context.services.presence)
            viewer = self.viewer
            if viewer is not None:
                loaders.viewer_id = viewer.id
                loaders.users.prime(viewer.id, viewer)
        return loaders

    def set_viewer(self, user: UserRow) -> None:
        self.viewer = user
        if self._loaders is not None:
            self._loaders.viewer_id = user.id
            self._loaders.users.prime(user.id, user)

    def fresh_loaders(self) -> None:
        """Forget every value loaded so far (after a failed write, or between events)."""
        self._loaders = None


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    alive = method()
    if alive is not None:
        alive()


_USER_COLUMNS = tuple(column.key for column in UserRow.__table__.columns)  # type: ignore[attr-defined]
_USER_ID_AT = _USER_COLUMNS.index("id")


def _detached_user(values: tuple[Any, ...]) -> UserRow:
    user = UserRow(**dict(zip(_USER_COLUMNS, values, strict=True)))
    make_transient_to_detached(user)  # a row of the table, not a new one to insert
    return user


# Weakly: every timer and task made during an operation takes a copy of the
# context, and a copy must not keep the operation's scope (its viewer, its
# loaders and their rows) once the operation is over. On SQLite each pool
# checkout makes a 60-second timer (SQLAlchemy's wait_for on its queue) that
# stays in the loop's heap, context and all, after it is cancelled. Whoever
# runs the operation holds its scope: its OperationHandle, or a live
# stream's own task (sharing._pump).
_scope: ContextVar[weakref.ref[OperationScope] | None] = ContextVar(
    "parley_operation_scope", default=None
)
# Outside any operation (a test calling a resolver directly): one scope for
# the context and task, held by the context itself.
_fallback_scope: ContextVar[OperationScope | None] = ContextVar(
    "parley_fallback_scope", default=None
)


@dataclass(frozen=True, slots=True)
class OperationHandle:
    scope: OperationScope
    token: Token[weakref.ref[OperationScope] | None]


@dataclass
class Socket:
    """An authenticated WebSocket: its user, its presence entry, its expiry timer."""

    user_id: int
    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    expiry: asyncio.TimerHandle | None = None


@dataclass
class Context(BaseContext):
    services: Services
    # The raw access token presented by the HTTP request or the socket's
    # connection_init; it is checked against the sessions table per operation.
    access_token: str | None = None
    # Set for an authenticated WebSocket (see resolvers.live.connections).
    socket: Socket | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def begin_operation(self) -> OperationHandle:
        """Open a fresh scope (session, loaders, viewer) for the operation now starting."""
        scope = OperationScope(self)
        return OperationHandle(scope=scope, token=_scope.set(weakref.ref(scope)))

    async def end_operation(self, handle: OperationHandle) -> None:
        """Close the operation's session; this may run in another task than the operation
        (the legacy protocol's "stop" closes a stream from the socket's task)."""
        try:
            await handle.scope.close_db()
        finally:
            with suppress(ValueError):  # the token belongs to another task's context
                _scope.reset(handle.token)

    @property
    def request_id(self) -> str:
        return self.scope.request_id

    @property
    def scope(self) -> OperationScope:
        held = _scope.get()
        scope = held() if held is not None else None
        if scope is None or scope.context is not self:
            scope = _fallback_scope.get()
            if scope is None or scope.context is not self:
                scope = OperationScope(self)
                _fallback_scope.set(scope)
        return scope

    @property
    def db(self) -> RequestDb:
        return self.scope.db

    @property
    def loaders(self) -> Loaders:
        return self.scope.loaders

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def viewer(self) -> UserRow | None:
        """The signed-in user, or None for an anonymous caller."""
        scope = self.scope
        if scope.viewer is None and self.access_token:
            claims = self.services.tokens.read_access_token(self.access_token)
            if claims is None:
                return None
            async with scope.db.read() as session:
                user = await auth_sessions.get_signed_in_user(
                    session, session_id=claims.session_id, user_id=claims.user_id, now=self.now
                )
                if user is not None:
                    # Detached, the viewer keeps its values whatever later
                    # happens to the session (a failed write expires rows).
                    session.expunge(user)
            if user is not None:
                scope.set_viewer(user)
        return scope.viewer

    async def require_viewer(self) -> UserRow:
        viewer = await self.viewer()
        if viewer is None:
            if self.access_token:
                raise Unauthenticated(
                    "The access token is invalid, expired or signed out: refresh it or sign in."
                )
            raise Unauthenticated()
        return viewer

"""Per-operation DataLoaders: every relationship field is one batched statement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar

from strawberry.dataloader import DataLoader

from db import conversations, messages, users
from db.messages import ReactionSummary
from db.models import ConversationRow, MembershipRow, MessageRow, UserRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from resolvers.live.presence import PresenceStore

K = TypeVar("K")
V = TypeVar("V")
Loader = Callable[["AsyncSession", list[int]], Awaitable[dict[int, V]]]


class ViewerNeeded(RuntimeError):
    """A field needs the viewer, but the operation runs for no one in particular.

    Shared execution of subscriptions (``resolvers.live.sharing``) renders an
    event once for every subscriber; anything that depends on who is looking
    raises this there, and the event is rendered for each viewer instead.
    """


class Reads(Protocol):
    """Where loaders read: the operation's session (``RequestDb``), one use at a time."""

    def read(self) -> AbstractAsyncContextManager[AsyncSession]: ...


class Loaders:
    """The DataLoaders of one operation.

    The batch functions read through a ``_Reader`` of their own, never
    through this object: the DataLoaders hold the batch functions and this
    object holds the DataLoaders, so a batch function holding it would make
    a reference cycle of the whole operation's cache (its rows, their
    futures), which only the cyclic collector frees, and the rows that
    outlive a collection only on its rare full passes. As it is, an
    operation's rows go the moment it ends.
    """

    def __init__(self, db: Reads, presence: PresenceStore | None = None) -> None:
        reader = self._reader = _Reader(db, presence)
        # Loaders of things that may not exist answer None for a missing key;
        # the others (counts, lists) answer for every key.
        self.users = _maybe(reader, reader.load_users)
        self.conversations = _maybe(reader, reader.load_conversations)
        self.messages = _maybe(reader, reader.load_messages)
        self.viewer_memberships = _maybe(reader, reader.load_viewer_memberships)
        self.last_messages = _maybe(reader, reader.load_last_messages)
        self.reactions = _always(reader, reader.load_reactions)
        self.unread_counts = _always(reader, reader.load_unread_counts)
        self.member_counts = _always(reader, reader.load_member_counts)
        self.peers = _always(reader, reader.load_peers)
        self.online = DataLoader(load_fn=reader.load_online)

    @property
    def viewer_id(self) -> int | None:
        return self._reader.viewer_id

    @viewer_id.setter
    def viewer_id(self, viewer_id: int | None) -> None:
        self._reader.viewer_id = viewer_id

    def require_viewer_id(self) -> int:
        """The viewer's id, for what differs from viewer to viewer."""
        return self._reader.require_viewer_id()

    def remember(self, *rows: UserRow | ConversationRow | MessageRow) -> None:
        """Prime the loaders with rows a resolver already holds (saves a statement)."""
        for row in rows:
            if isinstance(row, UserRow):
                self.users.prime(row.id, row, force=True)
            elif isinstance(row, ConversationRow):
                self.conversations.prime(row.id, row, force=True)
            else:
                self.messages.prime(row.id, row, force=True)


def _maybe(reader: _Reader, load: Loader[V]) -> DataLoader[int, V | None]:
    async def batch(keys: Sequence[int]) -> list[V | None]:
        async with reader.db.read() as session:
            found = await load(session, list(keys))
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=batch)


def _always(reader: _Reader, load: Loader[V]) -> DataLoader[int, V]:
    async def batch(keys: Sequence[int]) -> list[V]:
        async with reader.db.read() as session:
            found = await load(session, list(keys))
        return [found[key] for key in keys]

    return DataLoader(load_fn=batch)


class _Reader:
    """What the batch functions read: the operation's session, presence, and the viewer."""

    __slots__ = ("db", "presence", "viewer_id")

    def __init__(self, db: Reads, presence: PresenceStore | None) -> None:
        self.db = db
        self.presence = presence
        self.viewer_id: int | None = None

    def require_viewer_id(self) -> int:
        if self.viewer_id is None:
            raise ViewerNeeded("viewer-specific value read without a viewer")
        return self.viewer_id

    async def load_online(self, ids: Sequence[int]) -> list[bool]:
        if self.presence is None:
            return [False for _ in ids]
        found = await self.presence.online(list(ids))
        return [found.get(i, False) for i in ids]

    async def load_users(self, session: AsyncSession, ids: list[int]) -> dict[int, UserRow]:
        return {row.id: row for row in await users.get_users(session, ids=ids)}

    async def load_conversations(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, ConversationRow]:
        rows = await conversations.get_conversations(session, ids=ids)
        return {row.id: row for row in rows}

    async def load_messages(self, session: AsyncSession, ids: list[int]) -> dict[int, MessageRow]:
        return {row.id: row for row in await messages.get_messages(session, ids=ids)}

    async def load_viewer_memberships(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, MembershipRow]:
        rows = await conversations.get_memberships_of_user(
            session, user_id=self.require_viewer_id(), conversation_ids=ids
        )
        return {row.conversation_id: row for row in rows}

    async def load_reactions(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, list[ReactionSummary]]:
        found = await messages.reaction_summaries(
            session, message_ids=ids, viewer_id=self.viewer_id
        )
        return {key: found.get(key, []) for key in ids}

    async def load_last_messages(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, MessageRow]:
        return await messages.last_messages(session, conversation_ids=ids)

    async def load_unread_counts(self, session: AsyncSession, ids: list[int]) -> dict[int, int]:
        found = await messages.unread_counts(
            session, user_id=self.require_viewer_id(), conversation_ids=ids
        )
        return {key: found.get(key, 0) for key in ids}

    async def load_member_counts(self, session: AsyncSession, ids: list[int]) -> dict[int, int]:
        found = await conversations.count_members(session, conversation_ids=ids)
        return {key: found.get(key, 0) for key in ids}

    async def load_peers(self, session: AsyncSession, ids: list[int]) -> dict[int, int]:
        return await conversations.get_peers(
            session, user_id=self.require_viewer_id(), conversation_ids=ids
        )


def forget(loader: DataLoader[K, V], key: K) -> None:
    """Drop a cached value (after a write changed it); a no-op when none is cached."""
    if loader.cache_map.get(key) is not None:
        loader.clear(key)

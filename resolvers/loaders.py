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
    def __init__(self, db: Reads, presence: PresenceStore | None = None) -> None:
        self._db = db
        self._presence = presence
        self.viewer_id: int | None = None
        # Loaders of things that may not exist answer None for a missing key;
        # the others (counts, lists) answer for every key.
        self.users = self._maybe(self._load_users)
        self.conversations = self._maybe(self._load_conversations)
        self.messages = self._maybe(self._load_messages)
        self.viewer_memberships = self._maybe(self._load_viewer_memberships)
        self.last_messages = self._maybe(self._load_last_messages)
        self.reactions = self._always(self._load_reactions)
        self.unread_counts = self._always(self._load_unread_counts)
        self.member_counts = self._always(self._load_member_counts)
        self.peers = self._always(self._load_peers)
        self.online = DataLoader(load_fn=self._load_online)

    def _maybe(self, load: Loader[V]) -> DataLoader[int, V | None]:
        async def batch(keys: Sequence[int]) -> list[V | None]:
            async with self._db.read() as session:
                found = await load(session, list(keys))
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=batch)

    def _always(self, load: Loader[V]) -> DataLoader[int, V]:
        async def batch(keys: Sequence[int]) -> list[V]:
            async with self._db.read() as session:
                found = await load(session, list(keys))
            return [found[key] for key in keys]

        return DataLoader(load_fn=batch)

    def require_viewer_id(self) -> int:
        """The viewer's id, for what differs from viewer to viewer."""
        if self.viewer_id is None:
            raise ViewerNeeded("viewer-specific value read without a viewer")
        return self.viewer_id

    async def _load_online(self, ids: Sequence[int]) -> list[bool]:
        if self._presence is None:
            return [False for _ in ids]
        found = await self._presence.online(list(ids))
        return [found.get(i, False) for i in ids]

    async def _load_users(self, session: AsyncSession, ids: list[int]) -> dict[int, UserRow]:
        return {row.id: row for row in await users.get_users(session, ids=ids)}

    async def _load_conversations(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, ConversationRow]:
        rows = await conversations.get_conversations(session, ids=ids)
        return {row.id: row for row in rows}

    async def _load_messages(self, session: AsyncSession, ids: list[int]) -> dict[int, MessageRow]:
        return {row.id: row for row in await messages.get_messages(session, ids=ids)}

    async def _load_viewer_memberships(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, MembershipRow]:
        rows = await conversations.get_memberships_of_user(
            session, user_id=self.require_viewer_id(), conversation_ids=ids
        )
        return {row.conversation_id: row for row in rows}

    async def _load_reactions(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, list[ReactionSummary]]:
        found = await messages.reaction_summaries(
            session, message_ids=ids, viewer_id=self.viewer_id
        )
        return {key: found.get(key, []) for key in ids}

    async def _load_last_messages(
        self, session: AsyncSession, ids: list[int]
    ) -> dict[int, MessageRow]:
        return await messages.last_messages(session, conversation_ids=ids)

    async def _load_unread_counts(self, session: AsyncSession, ids: list[int]) -> dict[int, int]:
        found = await messages.unread_counts(
            session, user_id=self.require_viewer_id(), conversation_ids=ids
        )
        return {key: found.get(key, 0) for key in ids}

    async def _load_member_counts(self, session: AsyncSession, ids: list[int]) -> dict[int, int]:
        found = await conversations.count_members(session, conversation_ids=ids)
        return {key: found.get(key, 0) for key in ids}

    async def _load_peers(self, session: AsyncSession, ids: list[int]) -> dict[int, int]:
        return await conversations.get_peers(
            session, user_id=self.require_viewer_id(), conversation_ids=ids
        )

    def remember(self, *rows: UserRow | ConversationRow | MessageRow) -> None:
        """Prime the loaders with rows a resolver already holds (saves a statement)."""
        for row in rows:
            if isinstance(row, UserRow):
                self.users.prime(row.id, row, force=True)
            elif isinstance(row, ConversationRow):
                self.conversations.prime(row.id, row, force=True)
            else:
                self.messages.prime(row.id, row, force=True)


def forget(loader: DataLoader[K, V], key: K) -> None:
    """Drop a cached value (after a write changed it); a no-op when none is cached."""
    if loader.cache_map.get(key) is not None:
        loader.clear(key)

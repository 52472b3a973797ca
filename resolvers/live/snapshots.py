"""Timeline events loaded once per process, with everything their payloads show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db import conversations, messages, users
from db.messages import ReactionSummary
from db.models import ConversationRow, EventKind, EventRow, MessageRow, UserRow


@dataclass(frozen=True, slots=True)
class SharedEvent:
    """One timeline event and the rows its GraphQL payload needs, shared by all listeners.

    Viewer-independent: per-viewer values (viewerHasReacted, unread counts)
    are derived for each listener from ``reactions`` or loaded on demand.
    """

    conversation_id: int
    seq: int
    kind: EventKind
    at: datetime
    actor_id: int | None
    message_id: int | None
    payload: dict[str, Any]
    conversation: ConversationRow
    messages: dict[int, MessageRow] = field(default_factory=dict)
    users: dict[int, UserRow] = field(default_factory=dict)
    # message id -> [(emoji, user id)], oldest first
    reactions: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    # Its GraphQL payloads, rendered once per shape (see resolvers.live.sharing):
    # a render in flight, then what it rendered.
    rendered: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def message(self) -> MessageRow | None:
        return self.messages.get(self.message_id) if self.message_id is not None else None

    def user_ids(self, key: str) -> list[int]:
        return [int(i) for i in self.payload.get(key, [])]

    def reaction_summaries(self, message_id: int, viewer_id: int | None) -> list[ReactionSummary]:
        """The message's reactions as ``viewer_id`` sees them (None: whether they reacted is
        left unknown)."""
        counts: dict[str, list[int]] = {}
        for emoji, user_id in self.reactions.get(message_id, []):
            counts.setdefault(emoji, []).append(user_id)
        return [
            ReactionSummary(
                emoji=emoji,
                count=len(ids),
                viewer_has_reacted=None if viewer_id is None else viewer_id in ids,
            )
            for emoji, ids in counts.items()
        ]


async def load_events(
    session: AsyncSession, *, conversation_id: int, after_seq: int, limit: int
) -> list[SharedEvent]:
    """Events after ``after_seq`` in seq order, with their rows, in a fixed number of statements."""
    rows = await conversations.list_events(
        session, conversation_id=conversation_id, after_seq=after_seq, limit=limit
    )
    if not rows:
        return []
    return await _snapshot(session, rows)


async def _snapshot(session: AsyncSession, rows: Sequence[EventRow]) -> list[SharedEvent]:
    conversation = (await conversations.get_conversations(session, ids=[rows[0].conversation_id]))[
        0
    ]
    message_ids = {row.message_id for row in rows if row.message_id is not None}
    found = {m.id: m for m in await messages.get_messages(session, ids=list(message_ids))}
    replied = {m.reply_to_id for m in found.values() if m.reply_to_id is not None} - found.keys()
    found.update({m.id: m for m in await messages.get_messages(session, ids=list(replied))})
    user_ids: set[int] = set()
    for row in rows:
        if row.actor_id is not None:
            user_ids.add(row.actor_id)
        if row.kind == EventKind.MEMBERS_CHANGED:
            for key in ("added", "removed"):
                user_ids.update(int(i) for i in (row.payload or {}).get(key, []))
    user_ids.update(m.author_id for m in found.values() if m.author_id is not None)
    people = {u.id: u for u in await users.get_users(session, ids=list(user_ids))}
    reactions = await messages.reactions_by_user(session, message_ids=list(found))
    return [
        SharedEvent(
            conversation_id=row.conversation_id,
            seq=row.seq,
            kind=EventKind(row.kind),
            at=row.created_at,
            actor_id=row.actor_id,
            message_id=row.message_id,
            payload=dict(row.payload or {}),
            conversation=conversation,
            messages=found,
            users=people,
            reactions=reactions,
        )
        for row in rows
    ]

"""Writing the timeline: every change takes a seq, and is published only after commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db import conversations, messages
from db.models import EventKind, MessageKind, MessageRow, UserRow
from resolvers.live.publisher import Publisher


@dataclass
class Outbox:
    """What a transaction changed, published once it has committed."""

    conversation_events: list[tuple[int, int, str]] = field(default_factory=list)
    user_events: list[tuple[int, str, int]] = field(default_factory=list)

    async def record(
        self,
        session: AsyncSession,
        *,
        conversation_id: int,
        kind: EventKind,
        now: datetime,
        actor_id: int | None,
        message_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> int:
        event = await conversations.append_event(
            session,
            conversation_id=conversation_id,
            kind=kind,
            now=now,
            actor_id=actor_id,
            message_id=message_id,
            payload=payload,
        )
        self.conversation_events.append((conversation_id, event.seq, kind))
        return event.seq

    async def add_message(
        self,
        session: AsyncSession,
        *,
        conversation_id: int,
        kind: MessageKind,
        author_id: int | None,
        body: str,
        now: datetime,
        client_message_id: str | None = None,
        reply_to_id: int | None = None,
    ) -> MessageRow:
        """A message under its own MESSAGE_ADDED event: the message's seq is the event's."""
        seq = await conversations.allocate_seq(session, conversation_id=conversation_id, now=now)
        message = await messages.insert_message(
            session,
            conversation_id=conversation_id,
            seq=seq,
            kind=kind,
            author_id=author_id,
            body=body,
            now=now,
            client_message_id=client_message_id,
            reply_to_id=reply_to_id,
        )
        await conversations.insert_event(
            session,
            conversation_id=conversation_id,
            seq=seq,
            kind=EventKind.MESSAGE_ADDED,
            now=now,
            actor_id=author_id,
            message_id=message.id,
        )
        self.conversation_events.append((conversation_id, seq, EventKind.MESSAGE_ADDED))
        return message

    async def system_message(
        self, session: AsyncSession, *, conversation_id: int, body: str, now: datetime
    ) -> MessageRow:
        """A SYSTEM message ("Ann added Bob"): no author."""
        return await self.add_message(
            session,
            conversation_id=conversation_id,
            kind=MessageKind.SYSTEM,
            author_id=None,
            body=body,
            now=now,
        )

    def notify_user(self, user_id: int, kind: str, conversation_id: int) -> None:
        self.user_events.append((user_id, kind, conversation_id))

    async def publish(self, publisher: Publisher) -> None:
        for conversation_id, seq, kind in self.conversation_events:
            await publisher.conversation_event(conversation_id=conversation_id, seq=seq, kind=kind)
        for user_id, kind, conversation_id in self.user_events:
            await publisher.user_event(user_id=user_id, kind=kind, conversation_id=conversation_id)


def names(users: list[UserRow]) -> str:
    """'Ann', 'Ann and Bob', 'Ann, Bob and Cy' — for SYSTEM message bodies."""
    labels = [user.display_name for user in users]
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]

"""The unit of work: one write's session, its clock, and what it announces after commit.

Every write runs inside ``ctx.db.transaction()``, which yields a UnitOfWork
and is its one owner: it commits on success, rolls back on any error, and
only after the commit publishes what the work enqueued. Resolvers enqueue
(``record``, ``add_message``, ``notify``, ``announce``) and never publish
themselves, so an announcement can neither be forgotten nor go out before
the change it announces is in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db import conversations, messages
from db.models import ConversationRow, EventKind, MessageKind, MessageRow
from resolvers.live.publisher import Envelope, Notice, timeline_advanced, user_notice


class UnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.now = datetime.now(UTC)
        self.envelopes: list[Envelope] = []

    async def lock_conversation(self, conversation_id: int) -> ConversationRow | None:
        """The conversation, row-locked until commit (PostgreSQL), and the clock set from it.

        Every write to a conversation takes this lock first, so concurrent
        writers line up, and the time they stamp is read after the lock: an
        event with a higher seq never has an earlier time, and
        ``last_activity_at`` never moves back, whatever the clocks of other
        nodes say.
        """
        row = await conversations.lock_conversation(self.session, conversation_id=conversation_id)
        if row is not None:
            self.now = max(datetime.now(UTC), row.last_activity_at, self.now)
        return row

    async def record(
        self,
        *,
        conversation_id: int,
        kind: EventKind,
        actor_id: int | None,
        message_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> int:
        """A timeline event under the conversation's next seq; announced after commit."""
        event = await conversations.append_event(
            self.session,
            conversation_id=conversation_id,
            kind=kind,
            now=self.now,
            actor_id=actor_id,
            message_id=message_id,
            payload=payload,
        )
        self.envelopes.append(
            timeline_advanced(conversation_id=conversation_id, seq=event.seq, kind=kind)
        )
        return event.seq

    async def add_message(
        self,
        *,
        conversation_id: int,
        kind: MessageKind,
        author_id: int | None,
        body: str,
        client_message_id: str | None = None,
        reply_to_id: int | None = None,
    ) -> MessageRow:
        """A message under its own MESSAGE_ADDED event: the message's seq is the event's."""
        seq = await conversations.allocate_seq(
            self.session, conversation_id=conversation_id, now=self.now
        )
        message = await messages.insert_message(
            self.session,
            conversation_id=conversation_id,
            seq=seq,
            kind=kind,
            author_id=author_id,
            body=body,
            now=self.now,
            client_message_id=client_message_id,
            reply_to_id=reply_to_id,
        )
        await conversations.insert_event(
            self.session,
            conversation_id=conversation_id,
            seq=seq,
            kind=EventKind.MESSAGE_ADDED,
            now=self.now,
            actor_id=author_id,
            message_id=message.id,
        )
        self.envelopes.append(
            timeline_advanced(
                conversation_id=conversation_id, seq=seq, kind=EventKind.MESSAGE_ADDED
            )
        )
        return message

    async def system_message(self, *, conversation_id: int, body: str) -> MessageRow:
        """A SYSTEM message ("Ann added Bob"): no author."""
        return await self.add_message(
            conversation_id=conversation_id, kind=MessageKind.SYSTEM, author_id=None, body=body
        )

    def notify(self, user_id: int, notice: Notice, conversation_id: int) -> None:
        """Tell a user, on its own channel, after commit."""
        self.envelopes.append(
            user_notice(user_id=user_id, notice=notice, conversation_id=conversation_id)
        )

    def announce(self, envelope: Envelope) -> None:
        """Send a signal (typing, a read receipt) after commit."""
        self.envelopes.append(envelope)

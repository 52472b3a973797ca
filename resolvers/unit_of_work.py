"""The unit of work: one write's session, its clock, and what it announces after commit.

Every write runs inside ``ctx.db.transaction()``, which yields a UnitOfWork
and is its one owner: it commits on success, rolls back on any error, and
only after the commit publishes what the work enqueued. Resolvers enqueue
(``record``, ``add_message``, ``notify``, ``announce``) and never publish
themselves, so an announcement can neither be forgotten nor go out before
the change it announces is in the database.

A new message also leaves a snapshot of its event (``snapshots``), built
from the rows the work already holds. After the commit it is offered to
this process's feed of the conversation, which then need not read back what
was just written (resolvers/live/feeds.py); other processes read it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from db import conversations, messages
from db.models import ConversationRow, EventKind, MessageKind, MessageRow, UserRow
from resolvers.live.publisher import Envelope, Notice, timeline_advanced, user_notice
from resolvers.live.snapshots import SharedEvent


class UnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.now = datetime.now(UTC)
        self.envelopes: list[Envelope] = []
        self.snapshots: list[SharedEvent] = []
        self._locked: dict[int, ConversationRow] = {}

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
            self._locked[conversation_id] = row
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
        self._advanced(conversation_id, event.seq)
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
        author: UserRow | None = None,
    ) -> MessageRow:
        """A message under its own MESSAGE_ADDED event: the message's seq is the event's.

        ``author``, the row of ``author_id`` when the caller holds it, lets
        the event's snapshot be made without reading it back.
        """
        seq = await conversations.allocate_seq(
            self.session, conversation_id=conversation_id, now=self.now
        )
        self._advanced(conversation_id, seq)
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
        self._snapshot(message, author)
        return message

    def _advanced(self, conversation_id: int, seq: int) -> None:
        """The locked row as the seq's UPDATE left the table (it does not touch the row)."""
        row = self._locked.get(conversation_id)
        if row is not None:
            set_committed_value(row, "last_seq", seq)
            set_committed_value(row, "last_activity_at", self.now)

    def _snapshot(self, message: MessageRow, author: UserRow | None) -> None:
        """The MESSAGE_ADDED event as ``snapshots.load_events`` would read it after commit.

        Only when every row it shows is at hand: the conversation (locked,
        and kept as the work leaves it by ``_advanced``), the author, and no
        message replied to. A new message has no reactions yet.
        """
        conversation = self._locked.get(message.conversation_id)
        if (
            conversation is None
            or message.reply_to_id is not None
            or author is None
            or author.id != message.author_id
        ):
            return
        self.snapshots.append(
            SharedEvent(
                conversation_id=message.conversation_id,
                seq=message.seq,
                kind=EventKind.MESSAGE_ADDED,
                at=self.now,
                actor_id=message.author_id,
                message_id=message.id,
                payload={},
                conversation=conversation,
                messages={message.id: message},
                users={author.id: author},
            )
        )

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

"""Sending, editing, deleting, reacting, reading; and history."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import conversations, messages
from db.models import (
    ConversationKind,
    ConversationRow,
    EventKind,
    MembershipRow,
    MessageKind,
    MessageRow,
    Role,
    UserRow,
)
from resolvers import validation
from resolvers.context import Context
from resolvers.conversations import Access, not_found, readable
from resolvers.loaders import forget
from resolvers.paging import Page, two_way_window
from resolvers.timeline import Outbox
from schema.errors import BadUserInput, Forbidden, NotFound
from schema.ids import decode_cursor, encode_cursor

READ_MARKER_MOVED = "READ_MARKER_MOVED"


def message_cursor(row: MessageRow) -> str:
    return encode_cursor(row.seq)


def _seq_of(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    seq: int = decode_cursor(cursor, int)[0]
    return seq


async def history(
    ctx: Context,
    *,
    conversation_id: int,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Page[MessageRow]:
    """A page of messages, oldest first, keyset-paged on seq so inserts never shift it."""
    await readable(ctx, conversation_id)
    window = two_way_window(first=first, after=after, last=last, before=before)
    after_seq, before_seq = _seq_of(after), _seq_of(before)
    async with ctx.db.read() as session:
        rows = await messages.page_messages(
            session,
            conversation_id=conversation_id,
            after_seq=after_seq,
            before_seq=before_seq,
            limit=window.limit + 1,
            newest_first=window.from_end,
        )
    more = len(rows) > window.limit
    rows = rows[: window.limit]
    if window.from_end:
        rows.reverse()
        has_previous, has_next = more, before_seq is not None
    else:
        has_previous, has_next = after_seq is not None, more
    ctx.loaders.remember(*rows)
    return Page(
        edges=[(message_cursor(row), row) for row in rows],
        has_next_page=has_next,
        has_previous_page=has_previous,
    )


async def context_around(
    ctx: Context, *, message_id: int, before: int, after: int
) -> Page[MessageRow]:
    """Up to ``before`` messages before the target, the target, up to ``after`` after it."""
    for name, value in (("before", before), ("after", after)):
        if not 0 <= value <= validation.MAX_PAGE:
            raise BadUserInput(f"{name} must be between 0 and {validation.MAX_PAGE}.", field=name)
    target = await visible_message(ctx, message_id)
    async with ctx.db.read() as session:
        older = await messages.page_messages(
            session,
            conversation_id=target.conversation_id,
            before_seq=target.seq,
            limit=before + 1,
            newest_first=True,
        )
        newer = await messages.page_messages(
            session,
            conversation_id=target.conversation_id,
            after_seq=target.seq,
            limit=after + 1,
            newest_first=False,
        )
    rows = [*reversed(older[:before]), target, *newer[:after]]
    ctx.loaders.remember(*rows)
    return Page(
        edges=[(message_cursor(row), row) for row in rows],
        has_next_page=len(newer) > after,
        has_previous_page=len(older) > before,
    )


async def visible_message(ctx: Context, message_id: int) -> MessageRow:
    await ctx.require_viewer()
    message = await ctx.loaders.messages.load(message_id)
    if message is None:
        raise NotFound("No message with that ID is visible to you.")
    try:
        await readable(ctx, message.conversation_id)
    except NotFound:
        raise NotFound("No message with that ID is visible to you.") from None
    return message


async def send(
    ctx: Context,
    *,
    conversation_id: int,
    body: str,
    client_message_id: str | None,
    reply_to_id: int | None,
) -> MessageRow:
    viewer = await ctx.require_viewer()
    body = validation.message_body(body)
    client_message_id = validation.client_message_id(client_message_id)
    try:
        return await _send(ctx, viewer, conversation_id, body, client_message_id, reply_to_id)
    except IntegrityError:
        # A concurrent send with the same clientMessageId committed first.
        if client_message_id is None:
            raise
        async with ctx.db.read() as session:
            existing = await messages.get_message_by_client_id(
                session,
                conversation_id=conversation_id,
                author_id=viewer.id,
                client_message_id=client_message_id,
            )
        if existing is None:
            raise
        return existing


async def _send(
    ctx: Context,
    viewer: UserRow,
    conversation_id: int,
    body: str,
    client_message_id: str | None,
    reply_to_id: int | None,
) -> MessageRow:
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        await _require_member(session, conversation_id, viewer)
        if client_message_id is not None:
            existing = await messages.get_message_by_client_id(
                session,
                conversation_id=conversation_id,
                author_id=viewer.id,
                client_message_id=client_message_id,
            )
            if existing is not None:
                return existing
        if reply_to_id is not None:
            replied = await messages.get_messages(session, ids=[reply_to_id])
            if not replied or replied[0].conversation_id != conversation_id:
                raise BadUserInput(
                    "replyToId must name a message of the same conversation.", field="replyToId"
                )
        message = await outbox.add_message(
            session,
            conversation_id=conversation_id,
            kind=MessageKind.TEXT,
            author_id=viewer.id,
            body=body,
            now=now,
            client_message_id=client_message_id,
            reply_to_id=reply_to_id,
        )
        # What you sent, you have read.
        await conversations.move_read_marker(
            session,
            conversation_id=conversation_id,
            user_id=viewer.id,
            seq=message.seq,
        )
    await outbox.publish(ctx.services.publisher)
    # Sending ends typing at once rather than after the typing timeout.
    await ctx.services.publisher.typing(
        conversation_id=conversation_id, user_id=viewer.id, typing=False
    )
    ctx.loaders.remember(message)
    return message


async def edit(ctx: Context, *, message_id: int, body: str) -> MessageRow:
    viewer = await ctx.require_viewer()
    body = validation.message_body(body)
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        message = await _message_for_change(session, message_id, viewer)
        if message.author_id != viewer.id or message.kind != MessageKind.TEXT:
            raise Forbidden("Only the author can edit a message.")
        if message.deleted_at is not None:
            raise BadUserInput("A deleted message cannot be edited.")
        if message.body != body:
            message.body = body
            message.edited_at = now
            await messages.save_message(session, message=message)
            await outbox.record(
                session,
                conversation_id=message.conversation_id,
                kind=EventKind.MESSAGE_EDITED,
                now=now,
                actor_id=viewer.id,
                message_id=message.id,
            )
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(message)
    return message


async def delete(ctx: Context, *, message_id: int) -> MessageRow:
    viewer = await ctx.require_viewer()
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        message = await _message_for_change(session, message_id, viewer)
        if message.deleted_at is None:
            if message.author_id != viewer.id:
                conversation = (
                    await conversations.get_conversations(session, ids=[message.conversation_id])
                )[0]
                membership = await conversations.get_membership(
                    session,
                    conversation_id=message.conversation_id,
                    user_id=viewer.id,
                )
                moderator = (
                    conversation.kind == ConversationKind.GROUP
                    and membership is not None
                    and membership.role in (Role.OWNER, Role.ADMIN)
                )
                if not moderator:
                    raise Forbidden("Only the author or a group owner or admin can delete it.")
            message.body = None
            message.deleted_at = now
            await messages.save_message(session, message=message)
            await messages.clear_reactions(session, message_id=message_id)
            await outbox.record(
                session,
                conversation_id=message.conversation_id,
                kind=EventKind.MESSAGE_DELETED,
                now=now,
                actor_id=viewer.id,
                message_id=message.id,
            )
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(message)
    forget(ctx.loaders.reactions, message_id)
    return message


async def react(ctx: Context, *, message_id: int, emoji: str, add: bool) -> MessageRow:
    viewer = await ctx.require_viewer()
    emoji = validation.emoji(emoji)
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        message = await _message_for_change(session, message_id, viewer)
        if message.deleted_at is not None:
            raise BadUserInput("A deleted message takes no reactions.")
        if add:
            changed = await messages.add_reaction(
                session,
                message_id=message_id,
                user_id=viewer.id,
                emoji=emoji,
                now=now,
            )
        else:
            changed = await messages.remove_reaction(
                session,
                message_id=message_id,
                user_id=viewer.id,
                emoji=emoji,
            )
        if changed:
            await outbox.record(
                session,
                conversation_id=message.conversation_id,
                kind=EventKind.REACTIONS_CHANGED,
                now=now,
                actor_id=viewer.id,
                message_id=message.id,
                payload={"emoji": emoji, "change": "added" if add else "removed"},
            )
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(message)
    forget(ctx.loaders.reactions, message_id)
    return message


async def mark_read(ctx: Context, *, conversation_id: int, seq: int) -> Access:
    viewer = await ctx.require_viewer()
    if seq < 0:
        raise BadUserInput("seq must not be negative.", field="seq")
    outbox = Outbox()
    async with ctx.db.transaction() as session:
        conversation, membership = await _require_member(session, conversation_id, viewer)
        target = min(seq, conversation.last_seq)
        if target > membership.last_read_seq:
            await conversations.move_read_marker(
                session,
                conversation_id=conversation_id,
                user_id=viewer.id,
                seq=target,
            )
            await session.refresh(membership)
            outbox.notify_user(viewer.id, READ_MARKER_MOVED, conversation_id)
            moved = True
        else:
            moved = False
    await outbox.publish(ctx.services.publisher)
    if moved:
        await ctx.services.publisher.read_receipt(
            conversation_id=conversation_id,
            user_id=viewer.id,
            last_read_seq=membership.last_read_seq,
            at=ctx.now,
        )
    ctx.loaders.viewer_memberships.prime(conversation_id, membership, force=True)
    forget(ctx.loaders.unread_counts, conversation_id)
    return Access(conversation=conversation, membership=membership)


async def _require_member(
    session: AsyncSession, conversation_id: int, viewer: UserRow
) -> tuple[ConversationRow, MembershipRow]:
    """Lock the conversation, then check membership: every write to a conversation
    takes its row lock first (as membership changes do), so a check cannot go stale
    before the write it guards commits, and lock order is the same everywhere."""
    conversation = await conversations.lock_conversation(session, conversation_id=conversation_id)
    if conversation is None:
        raise not_found(conversation_id)
    membership = await conversations.get_membership(
        session,
        conversation_id=conversation_id,
        user_id=viewer.id,
    )
    if membership is None:
        if conversation.kind == ConversationKind.GROUP and conversation.is_public:
            raise Forbidden("Join this group before you write to it.")
        raise not_found(conversation_id)
    return conversation, membership


async def _message_for_change(
    session: AsyncSession, message_id: int, viewer: UserRow
) -> MessageRow:
    """The message, if the viewer is a member of its conversation; else NOT_FOUND."""
    found = await messages.get_messages(session, ids=[message_id])
    if not found:
        raise NotFound("No message with that ID is visible to you.")
    try:
        await _require_member(session, found[0].conversation_id, viewer)
    except NotFound:
        raise NotFound("No message with that ID is visible to you.") from None
    # Read again under the conversation's lock: a concurrent edit or delete
    # committed meanwhile must be seen, not overwritten.
    message = await messages.reread_message(session, message_id=message_id)
    assert message is not None  # messages are never removed, only marked deleted
    return message

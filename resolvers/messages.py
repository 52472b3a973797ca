"""Sending, editing, deleting, reacting, reading; and history."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from db import conversations, messages
from db.models import ConversationKind, EventKind, MessageKind, MessageRow
from resolvers import validation
from resolvers.access import (
    Access,
    changeable_message,
    may_delete,
    may_edit,
    readable,
    visible_message,
    writable,
)
from resolvers.context import Context
from resolvers.live.publisher import Notice, read_receipt, typing_signal
from resolvers.loaders import forget
from resolvers.paging import Page, two_way_window
from schema.errors import BadUserInput, Forbidden
from schema.ids import decode_cursor, encode_cursor


def _connection(conversation_id: int) -> str:
    # A conversation's history is one connection, whichever field pages it.
    return f"messages:{conversation_id}"


def message_cursor(row: MessageRow) -> str:
    return encode_cursor(_connection(row.conversation_id), row.seq)


def _seq_of(cursor: str | None, conversation_id: int) -> int | None:
    if cursor is None:
        return None
    seq: int = decode_cursor(cursor, _connection(conversation_id), int)[0]
    return seq


async def history(
    ctx: Context,
    *,
    conversation_id: int,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    kind: ConversationKind | None = None,
) -> Page[MessageRow]:
    """A page of messages, oldest first, keyset-paged on seq so inserts never shift it."""
    await readable(ctx, conversation_id, kind=kind)
    window = two_way_window(first=first, after=after, last=last, before=before)
    after_seq, before_seq = _seq_of(after, conversation_id), _seq_of(before, conversation_id)
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


async def send(
    ctx: Context,
    *,
    conversation_id: int,
    body: str,
    client_message_id: str | None,
    reply_to_id: int | None,
    kind: ConversationKind | None = None,
) -> MessageRow:
    viewer = await ctx.require_viewer()
    body = validation.message_body(body)
    client_message_id = validation.client_message_id(client_message_id)
    try:
        async with ctx.db.transaction() as work:
            await writable(work, conversation_id, viewer, kind=kind)
            if client_message_id is not None:
                existing = await messages.get_message_by_client_id(
                    work.session,
                    conversation_id=conversation_id,
                    author_id=viewer.id,
                    client_message_id=client_message_id,
                )
                if existing is not None:
                    return existing
            if reply_to_id is not None:
                replied = await messages.get_messages(work.session, ids=[reply_to_id])
                if not replied or replied[0].conversation_id != conversation_id:
                    raise BadUserInput(
                        "replyToId must name a message of the same conversation.",
                        field="replyToId",
                    )
            message = await work.add_message(
                conversation_id=conversation_id,
                kind=MessageKind.TEXT,
                author_id=viewer.id,
                body=body,
                client_message_id=client_message_id,
                reply_to_id=reply_to_id,
                author=viewer,
            )
            # What you sent, you have read.
            await conversations.move_read_marker(
                work.session, conversation_id=conversation_id, user_id=viewer.id, seq=message.seq
            )
            # Sending ends typing at once rather than after the typing timeout.
            work.announce(
                typing_signal(conversation_id=conversation_id, user_id=viewer.id, typing=False)
            )
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
    ctx.loaders.remember(message)
    return message


async def edit(ctx: Context, *, message_id: int, body: str) -> MessageRow:
    viewer = await ctx.require_viewer()
    body = validation.message_body(body)
    async with ctx.db.transaction() as work:
        message, _ = await changeable_message(work, message_id, viewer)
        if not may_edit(message, viewer):
            raise Forbidden("Only the author can edit a message.")
        if message.deleted_at is not None:
            raise BadUserInput("A deleted message cannot be edited.")
        if message.body != body:
            message.body = body
            message.edited_at = work.now
            await messages.save_message(work.session, message=message)
            await work.record(
                conversation_id=message.conversation_id,
                kind=EventKind.MESSAGE_EDITED,
                actor_id=viewer.id,
                message_id=message.id,
            )
    ctx.loaders.remember(message)
    return message


async def delete(ctx: Context, *, message_id: int) -> MessageRow:
    viewer = await ctx.require_viewer()
    async with ctx.db.transaction() as work:
        message, access = await changeable_message(work, message_id, viewer)
        if message.deleted_at is None:
            if not may_delete(message, access, viewer):
                raise Forbidden("Only the author or a group owner or admin can delete it.")
            message.body = None
            message.deleted_at = work.now
            await messages.save_message(work.session, message=message)
            await messages.clear_reactions(work.session, message_id=message_id)
            await work.record(
                conversation_id=message.conversation_id,
                kind=EventKind.MESSAGE_DELETED,
                actor_id=viewer.id,
                message_id=message.id,
            )
    ctx.loaders.remember(message)
    forget(ctx.loaders.reactions, message_id)
    return message


async def react(ctx: Context, *, message_id: int, emoji: str, add: bool) -> MessageRow:
    viewer = await ctx.require_viewer()
    emoji = validation.emoji(emoji)
    async with ctx.db.transaction() as work:
        message, _ = await changeable_message(work, message_id, viewer)
        if message.deleted_at is not None:
            raise BadUserInput("A deleted message takes no reactions.")
        if add:
            changed = await messages.add_reaction(
                work.session, message_id=message_id, user_id=viewer.id, emoji=emoji, now=work.now
            )
        else:
            changed = await messages.remove_reaction(
                work.session, message_id=message_id, user_id=viewer.id, emoji=emoji
            )
        if changed:
            await work.record(
                conversation_id=message.conversation_id,
                kind=EventKind.REACTIONS_CHANGED,
                actor_id=viewer.id,
                message_id=message.id,
                payload={"emoji": emoji, "change": "added" if add else "removed"},
            )
    ctx.loaders.remember(message)
    forget(ctx.loaders.reactions, message_id)
    return message


async def mark_read(
    ctx: Context, *, conversation_id: int, seq: int, kind: ConversationKind | None = None
) -> Access:
    viewer = await ctx.require_viewer()
    if seq < 0:
        raise BadUserInput("seq must not be negative.", field="seq")
    async with ctx.db.transaction() as work:
        access = await writable(work, conversation_id, viewer, kind=kind)
        membership = access.membership
        target = min(seq, access.conversation.last_seq)
        if target > membership.last_read_seq:
            await conversations.move_read_marker(
                work.session, conversation_id=conversation_id, user_id=viewer.id, seq=target
            )
            await work.session.refresh(membership)
            work.notify(viewer.id, Notice.READ_MARKER_MOVED, conversation_id)
            work.announce(
                read_receipt(
                    conversation_id=conversation_id,
                    user_id=viewer.id,
                    last_read_seq=membership.last_read_seq,
                    at=work.now,
                )
            )
    ctx.loaders.viewer_memberships.prime(conversation_id, membership, force=True)
    forget(ctx.loaders.unread_counts, conversation_id)
    return Access(conversation=access.conversation, membership=membership)

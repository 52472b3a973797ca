"""Reading conversations: the viewer's lists, public groups, members."""

from __future__ import annotations

from datetime import datetime

from db import conversations
from db.models import ConversationKind, ConversationRow, MembershipRow
from resolvers import validation
from resolvers.access import readable
from resolvers.context import Context
from resolvers.paging import Page, forward_limit, forward_page
from schema.ids import decode_cursor, encode_cursor


async def list_for_viewer(
    ctx: Context, *, first: int | None, after: str | None, kind: ConversationKind | None = None
) -> Page[ConversationRow]:
    viewer = await ctx.require_viewer()
    limit = forward_limit(first)
    # The viewer's conversations and its groups are two connections.
    connection = f"{kind or 'conversations'}:{viewer.id}"
    position: tuple[datetime, int] | None = None
    if after is not None:
        at, conversation_id = decode_cursor(after, connection, datetime, int)
        position = (at, conversation_id)
    async with ctx.db.read() as session:
        rows = await conversations.list_conversations_for_user(
            session,
            user_id=viewer.id,
            kind=kind,
            after=position,
            limit=limit + 1,
        )
    ctx.loaders.remember(*rows)
    return forward_page(
        rows,
        limit=limit,
        after_given=after is not None,
        cursor=lambda row: encode_cursor(connection, row.last_activity_at.isoformat(), row.id),
    )


async def public_groups(
    ctx: Context, *, search: str | None, first: int | None, after: str | None
) -> Page[ConversationRow]:
    await ctx.require_viewer()
    limit = forward_limit(first)
    text = validation.search_text(search, field="search")
    connection = f"publicGroups:{(text or '').casefold()}"  # another search is another list
    position: tuple[str, int] | None = None
    if after is not None:
        key, conversation_id = decode_cursor(after, connection, str, int)
        position = (key, conversation_id)
    async with ctx.db.read() as session:
        rows = await conversations.list_public_groups(
            session,
            search=text,
            after=position,
            limit=limit + 1,
        )
    ctx.loaders.remember(*rows)
    return forward_page(
        rows,
        limit=limit,
        after_given=after is not None,
        cursor=lambda row: encode_cursor(connection, row.title_key, row.id),
    )


async def members(
    ctx: Context, *, conversation_id: int, first: int | None, after: str | None
) -> Page[MembershipRow]:
    await readable(ctx, conversation_id)
    limit = forward_limit(50 if first is None else first)
    connection = f"members:{conversation_id}"
    after_id = decode_cursor(after, connection, int)[0] if after is not None else None
    async with ctx.db.read() as session:
        rows = await conversations.list_members(
            session, conversation_id=conversation_id, after_id=after_id, limit=limit + 1
        )
    page = forward_page(
        rows,
        limit=limit,
        after_given=after is not None,
        cursor=lambda row: encode_cursor(connection, row.id),
    )
    total = await ctx.loaders.member_counts.load(conversation_id)
    return Page(page.edges, page.has_next_page, page.has_previous_page, total_count=total)

"""Searching the messages the viewer can read."""

from __future__ import annotations

from db import messages
from db.models import ConversationKind, MessageRow
from resolvers import validation
from resolvers.context import Context
from resolvers.paging import Page, forward_limit, forward_page
from schema.errors import BadUserInput
from schema.ids import decode_cursor, encode_cursor


async def search_messages(
    ctx: Context,
    *,
    text: str,
    conversation_id: int | None,
    first: int | None,
    after: str | None,
    kind: ConversationKind | None = None,
) -> Page[MessageRow]:
    viewer = await ctx.require_viewer()
    query = validation.search_text(text, field="query")
    if query is None:
        raise BadUserInput("The search query must not be empty.", field="query")
    limit = forward_limit(first)
    # Another query, or another conversation to search in, is another list.
    connection = f"searchMessages:{conversation_id or ''}:{query.casefold()}"
    before_id = decode_cursor(after, connection, int)[0] if after is not None else None
    if conversation_id is not None and kind is not None:
        # An id of the wrong kind finds nothing, as an unknown id does.
        conversation = await ctx.loaders.conversations.load(conversation_id)
        if conversation is None or conversation.kind != kind:
            return Page(edges=[], has_next_page=False, has_previous_page=after is not None)
    async with ctx.db.read() as session:
        rows = await messages.search_messages(
            session,
            user_id=viewer.id,
            text=query,
            conversation_id=conversation_id,
            before_id=before_id,
            limit=limit + 1,
        )
    ctx.loaders.remember(*rows)
    return forward_page(
        rows,
        limit=limit,
        after_given=after is not None,
        cursor=lambda row: encode_cursor(connection, row.id),
    )

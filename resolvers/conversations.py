"""Reading conversations: visibility, lists, members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db import conversations
from db.models import ConversationKind, ConversationRow, MembershipRow, Role
from resolvers import validation
from resolvers.context import Context
from resolvers.paging import Page, forward_limit, forward_page
from schema.errors import NotFound
from schema.ids import decode_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class Access:
    """A conversation as the viewer may see it; ``membership`` is None for a public preview."""

    conversation: ConversationRow
    membership: MembershipRow | None

    @property
    def role(self) -> Role | None:
        return Role(self.membership.role) if self.membership else None


def not_found(conversation_id: int) -> NotFound:
    return NotFound("No conversation with that ID is visible to you.")


async def readable(ctx: Context, conversation_id: int) -> Access:
    """The conversation if the viewer is a member or it is a public group; else NOT_FOUND."""
    await ctx.require_viewer()
    membership = await ctx.loaders.viewer_memberships.load(conversation_id)
    conversation = await ctx.loaders.conversations.load(conversation_id)
    if conversation is None:
        raise not_found(conversation_id)
    if membership is None and not (
        conversation.kind == ConversationKind.GROUP and conversation.is_public
    ):
        raise not_found(conversation_id)
    return Access(conversation=conversation, membership=membership)


async def list_for_viewer(
    ctx: Context, *, first: int | None, after: str | None, kind: ConversationKind | None = None
) -> Page[ConversationRow]:
    viewer = await ctx.require_viewer()
    limit = forward_limit(first)
    position: tuple[datetime, int] | None = None
    if after is not None:
        at, conversation_id = decode_cursor(after, datetime, int)
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
        cursor=lambda row: encode_cursor(row.last_activity_at.isoformat(), row.id),
    )


async def public_groups(
    ctx: Context, *, search: str | None, first: int | None, after: str | None
) -> Page[ConversationRow]:
    await ctx.require_viewer()
    limit = forward_limit(first)
    position: tuple[str, int] | None = None
    if after is not None:
        key, conversation_id = decode_cursor(after, str, int)
        position = (key, conversation_id)
    async with ctx.db.read() as session:
        rows = await conversations.list_public_groups(
            session,
            search=validation.search_text(search, field="search"),
            after=position,
            limit=limit + 1,
        )
    ctx.loaders.remember(*rows)
    return forward_page(
        rows,
        limit=limit,
        after_given=after is not None,
        cursor=lambda row: encode_cursor(row.title_key, row.id),
    )


async def members(
    ctx: Context, *, conversation_id: int, first: int | None, after: str | None
) -> Page[MembershipRow]:
    await readable(ctx, conversation_id)
    limit = forward_limit(50 if first is None else first)
    after_id = decode_cursor(after, int)[0] if after is not None else None
    async with ctx.db.read() as session:
        rows = await conversations.list_members(
            session, conversation_id=conversation_id, after_id=after_id, limit=limit + 1
        )
    page = forward_page(
        rows, limit=limit, after_given=after is not None, cursor=lambda row: encode_cursor(row.id)
    )
    total = await ctx.loaders.member_counts.load(conversation_id)
    return Page(page.edges, page.has_next_page, page.has_previous_page, total_count=total)

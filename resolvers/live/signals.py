"""Signals nobody replays: typing. Lost if nobody listens, by design."""

from __future__ import annotations

from resolvers.context import Context
from resolvers.conversations import not_found


async def set_typing(ctx: Context, *, conversation_id: int, typing: bool) -> bool:
    viewer = await ctx.require_viewer()
    if await ctx.loaders.viewer_memberships.load(conversation_id) is None:
        raise not_found(conversation_id)
    await ctx.services.publisher.typing(
        conversation_id=conversation_id, user_id=viewer.id, typing=typing
    )
    return True

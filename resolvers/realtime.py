"""Ephemeral real-time signals: typing."""

from __future__ import annotations

import json

from resolvers.context import Context
from resolvers.conversations import not_found
from resolvers.publisher import conversation_channel


async def set_typing(ctx: Context, *, conversation_id: int, typing: bool) -> bool:
    await ctx.require_viewer()
    if await ctx.loaders.viewer_memberships.load(conversation_id) is None:
        raise not_found(conversation_id)
    viewer = await ctx.require_viewer()
    await ctx.services.publisher.ephemeral(
        conversation_channel(conversation_id) + ".typing",
        json.dumps({"user_id": viewer.id, "typing": typing}),
    )
    return True

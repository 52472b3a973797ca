"""Direct conversations: one per pair of users, opened from either side."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from db import conversations, users
from db.models import ConversationKind, ConversationRow, Role
from resolvers.context import Context
from resolvers.live.publisher import Notice
from schema.errors import BadUserInput, NotFound


async def open_direct(ctx: Context, *, user_id: int) -> ConversationRow:
    """The direct conversation with that user, created on first use."""
    viewer = await ctx.require_viewer()
    if user_id == viewer.id:
        raise BadUserInput("A direct conversation needs another user.", field="userId")
    key = conversations.direct_key(viewer.id, user_id)
    try:
        async with ctx.db.transaction() as work:
            direct = await conversations.get_direct_conversation(work.session, key=key)
            if direct is None:
                if not await users.get_users(work.session, ids=[user_id]):
                    raise NotFound.of_user()
                direct = await conversations.create_conversation(
                    work.session,
                    kind=ConversationKind.DIRECT,
                    created_by=viewer.id,
                    now=work.now,
                    direct_key=key,
                )
                for member in (viewer.id, user_id):
                    await conversations.add_member(
                        work.session,
                        conversation_id=direct.id,
                        user_id=member,
                        role=Role.MEMBER,
                        now=work.now,
                    )
                    work.notify(member, Notice.CONVERSATION_JOINED, direct.id)
    except IntegrityError:
        # Both sides opened it at once: the other transaction created it.
        async with ctx.db.read() as session:
            direct = await conversations.get_direct_conversation(session, key=key)
        if direct is None:
            raise
    ctx.loaders.remember(direct)
    return direct

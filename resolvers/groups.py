"""Creating and changing conversations: groups and direct conversations."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from db import conversations, users
from db.models import (
    ConversationKind,
    ConversationRow,
    EventKind,
    Role,
)
from resolvers import validation
from resolvers.context import Context
from resolvers.conversations import not_found
from resolvers.members import (
    JOINED,
    add_new_members,
    existing_users,
    locked_conversation,
    managed_group,
    read_up_to,
)
from resolvers.timeline import Outbox, names
from schema.errors import BadUserInput, NotFound


async def create_group(
    ctx: Context, *, title: str, description: str | None, is_public: bool, member_ids: list[int]
) -> ConversationRow:
    viewer = await ctx.require_viewer()
    title = validation.single_line(title, field="title", max_length=100)
    description = _description(description)
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        invited = await existing_users(session, [i for i in member_ids if i != viewer.id])
        group = await conversations.create_conversation(
            session,
            kind=ConversationKind.GROUP,
            created_by=viewer.id,
            now=now,
            title=title,
            description=description,
            is_public=is_public,
        )
        assert group.id is not None
        await conversations.add_member(
            session,
            conversation_id=group.id,
            user_id=viewer.id,
            role=Role.OWNER,
            now=now,
        )
        for user in invited:
            await conversations.add_member(
                session,
                conversation_id=group.id,
                user_id=user.id,
                role=Role.MEMBER,
                now=now,
            )
        everyone = [viewer, *invited]
        await outbox.record(
            session,
            conversation_id=group.id,
            kind=EventKind.MEMBERS_CHANGED,
            now=now,
            actor_id=viewer.id,
            payload={"added": [u.id for u in everyone], "removed": []},
        )
        body = f"{viewer.display_name} created the group “{title}”"
        if invited:
            body += f" with {names(invited)}"
        created = await outbox.system_message(session, conversation_id=group.id, body=body, now=now)
        await read_up_to(session, group.id, everyone, created.seq)
        await session.refresh(group)
        for user in everyone:
            outbox.notify_user(user.id, JOINED, group.id)
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(group)
    return group


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    text = validation.multi_line(value, field="description", max_length=1000, min_length=0)
    return text.strip() or None


async def update_group(ctx: Context, *, group_id: int, changes: dict[str, Any]) -> ConversationRow:
    """Apply the given changes (title, description, avatar_url, is_public); None clears."""
    viewer = await ctx.require_viewer()
    clean: dict[str, Any] = {}
    if "title" in changes:
        if changes["title"] is None:
            raise BadUserInput("A group's title cannot be removed.", field="title")
        clean["title"] = validation.single_line(changes["title"], field="title", max_length=100)
    if "description" in changes:
        clean["description"] = _description(changes["description"])
    if "avatar_url" in changes:
        avatar = changes["avatar_url"]
        clean["avatar_url"] = validation.url(avatar, field="avatarUrl") if avatar else None
    if "is_public" in changes:
        if changes["is_public"] is None:
            raise BadUserInput("isPublic must be true or false.", field="isPublic")
        clean["is_public"] = bool(changes["is_public"])
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        group, _ = await managed_group(session, group_id, viewer, need=Role.ADMIN)
        effective = {k: v for k, v in clean.items() if getattr(group, k) != v}
        old_title = group.title
        if effective:
            await conversations.update_group(session, conversation=group, changes=effective)
            await outbox.record(
                session,
                conversation_id=group_id,
                kind=EventKind.CONVERSATION_UPDATED,
                now=now,
                actor_id=viewer.id,
                payload={"changed": sorted(effective)},
            )
            if "title" in effective:
                await outbox.system_message(
                    session,
                    conversation_id=group_id,
                    body=f"{viewer.display_name} renamed the group from “{old_title}” "
                    f"to “{effective['title']}”",
                    now=now,
                )
            await session.refresh(group)
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(group)
    return group


async def join_group(ctx: Context, *, group_id: int) -> ConversationRow:
    viewer = await ctx.require_viewer()
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        group = await locked_conversation(session, group_id)
        membership = await conversations.get_membership(
            session,
            conversation_id=group_id,
            user_id=viewer.id,
        )
        if membership is None:
            if group is None or group.kind != ConversationKind.GROUP or not group.is_public:
                raise not_found(group_id)
            await add_new_members(session, outbox, group, viewer, [viewer], now=now)
            await session.refresh(group)
        assert group is not None
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(group)
    return group


async def open_direct(ctx: Context, *, user_id: int) -> ConversationRow:
    viewer = await ctx.require_viewer()
    if user_id == viewer.id:
        raise BadUserInput("A direct conversation needs another user.", field="userId")
    key = conversations.direct_key(viewer.id, user_id)
    outbox = Outbox()
    now = ctx.now
    try:
        async with ctx.db.transaction() as session:
            existing = await conversations.get_direct_conversation(session, key=key)
            if existing is not None:
                return _remember(ctx, existing)
            if not await users.get_users(session, ids=[user_id]):
                raise NotFound("No user has that ID.")
            direct = await conversations.create_conversation(
                session,
                kind=ConversationKind.DIRECT,
                created_by=viewer.id,
                now=now,
                direct_key=key,
            )
            assert direct.id is not None
            for member in (viewer.id, user_id):
                await conversations.add_member(
                    session,
                    conversation_id=direct.id,
                    user_id=member,
                    role=Role.MEMBER,
                    now=now,
                )
                outbox.notify_user(member, JOINED, direct.id)
    except IntegrityError:
        # Both sides opened it at once: the other transaction created it.
        async with ctx.db.read() as session:
            existing = await conversations.get_direct_conversation(session, key=key)
        assert existing is not None
        return _remember(ctx, existing)
    await outbox.publish(ctx.services.publisher)
    return _remember(ctx, direct)


def _remember(ctx: Context, conversation: ConversationRow) -> ConversationRow:
    ctx.loaders.remember(conversation)
    return conversation

"""Creating and changing groups."""

from __future__ import annotations

from typing import Any

from db import conversations
from db.models import ConversationKind, ConversationRow, EventKind, Role
from resolvers import validation
from resolvers.access import managed_group
from resolvers.context import Context
from resolvers.live.publisher import Notice
from resolvers.members import existing_users, names, read_up_to
from schema.errors import BadUserInput


async def create_group(
    ctx: Context, *, title: str, description: str | None, is_public: bool, member_ids: list[int]
) -> ConversationRow:
    viewer = await ctx.require_viewer()
    title = validation.single_line(title, field="title", max_length=100)
    description = _description(description)
    async with ctx.db.transaction() as work:
        invited = await existing_users(work, [i for i in member_ids if i != viewer.id])
        group = await conversations.create_conversation(
            work.session,
            kind=ConversationKind.GROUP,
            created_by=viewer.id,
            now=work.now,
            title=title,
            description=description,
            is_public=is_public,
        )
        everyone = [viewer, *invited]
        for user in everyone:
            await conversations.add_member(
                work.session,
                conversation_id=group.id,
                user_id=user.id,
                role=Role.OWNER if user is viewer else Role.MEMBER,
                now=work.now,
            )
            work.notify(user.id, Notice.CONVERSATION_JOINED, group.id)
        await work.record(
            conversation_id=group.id,
            kind=EventKind.MEMBERS_CHANGED,
            actor_id=viewer.id,
            payload={"added": [u.id for u in everyone], "removed": []},
        )
        body = f"{viewer.display_name} created the group “{title}”"
        if invited:
            body += f" with {names(invited)}"
        created = await work.system_message(conversation_id=group.id, body=body)
        await read_up_to(work, group.id, everyone, created.seq)
        await work.session.refresh(group)
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
    async with ctx.db.transaction() as work:
        group, _ = await managed_group(
            work, group_id, viewer, need=Role.ADMIN, kind=ConversationKind.GROUP
        )
        effective = {k: v for k, v in clean.items() if getattr(group, k) != v}
        old_title = group.title
        if effective:
            await conversations.update_group(work.session, conversation=group, changes=effective)
            await work.record(
                conversation_id=group_id,
                kind=EventKind.CONVERSATION_UPDATED,
                actor_id=viewer.id,
                payload={"changed": sorted(effective)},
            )
            if "title" in effective:
                await work.system_message(
                    conversation_id=group_id,
                    body=f"{viewer.display_name} renamed the group from “{old_title}” "
                    f"to “{effective['title']}”",
                )
            await work.session.refresh(group)
    ctx.loaders.remember(group)
    return group

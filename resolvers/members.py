"""Membership changes: adding, removing, roles, leaving; and the helpers groups share."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db import conversations, users
from db.models import (
    ROLE_RANK,
    ConversationKind,
    ConversationRow,
    EventKind,
    MembershipRow,
    Role,
    UserRow,
)
from resolvers import validation
from resolvers.context import Context
from resolvers.conversations import not_found
from resolvers.timeline import Outbox, names
from schema.errors import BadUserInput, Forbidden, NotFound

JOINED = "CONVERSATION_JOINED"
LEFT = "CONVERSATION_LEFT"


async def add_members(
    ctx: Context, *, conversation_id: int, user_ids: list[int]
) -> ConversationRow:
    viewer = await ctx.require_viewer()
    if not user_ids:
        raise BadUserInput("Name at least one user to add.", field="userIds")
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        group, _ = await managed_group(session, conversation_id, viewer, need=Role.ADMIN)
        found = await existing_users(session, user_ids)
        current = {
            m.user_id
            for m in await conversations.all_members(session, conversation_id=conversation_id)
        }
        new = [user for user in found if user.id not in current]
        if new:
            await add_new_members(session, outbox, group, viewer, new, now=now)
            await session.refresh(group)
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(group)
    return group


async def remove_member(ctx: Context, *, conversation_id: int, user_id: int) -> ConversationRow:
    viewer = await ctx.require_viewer()
    if user_id == viewer.id:
        raise BadUserInput("To remove yourself, use leaveConversation.", field="userId")
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        group, own = await managed_group(session, conversation_id, viewer, need=Role.ADMIN)
        target = await conversations.get_membership(
            session, conversation_id=conversation_id, user_id=user_id
        )
        if target is None:
            raise NotFound("That user is not a member of this group.")
        if ROLE_RANK[Role(target.role)] >= ROLE_RANK[Role(own.role)]:
            raise Forbidden("You can only remove members with a lower role than yours.")
        removed = (await users.get_users(session, ids=[user_id]))[0]
        await conversations.remove_member(session, conversation_id=conversation_id, user_id=user_id)
        await record_removal(
            session,
            outbox,
            conversation_id,
            viewer,
            [removed],
            now=now,
            body=f"{viewer.display_name} removed {removed.display_name}",
        )
        await session.refresh(group)
    await outbox.publish(ctx.services.publisher)
    ctx.loaders.remember(group)
    return group


async def set_member_role(
    ctx: Context, *, conversation_id: int, user_id: int, role: Role
) -> MembershipRow:
    """Owners set any role (OWNER hands ownership over); admins promote members to admin."""
    viewer = await ctx.require_viewer()
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        _, own = await managed_group(session, conversation_id, viewer, need=Role.ADMIN)
        target = await conversations.get_membership(
            session, conversation_id=conversation_id, user_id=user_id
        )
        if target is None:
            raise NotFound("That user is not a member of this group.")
        own_role, old_role = Role(own.role), Role(target.role)
        if user_id == viewer.id:
            raise BadUserInput(
                "You cannot change your own role; an owner hands ownership to someone else."
            )
        if ROLE_RANK[old_role] >= ROLE_RANK[own_role] or ROLE_RANK[role] > ROLE_RANK[own_role]:
            raise Forbidden("Your role does not allow that change.")
        if role != old_role:
            await conversations.set_role(
                session, conversation_id=conversation_id, user_id=user_id, role=role
            )
            if role == Role.OWNER:
                await conversations.set_role(
                    session,
                    conversation_id=conversation_id,
                    user_id=viewer.id,
                    role=Role.ADMIN,
                )
            subject = (await users.get_users(session, ids=[user_id]))[0]
            await outbox.record(
                session,
                conversation_id=conversation_id,
                kind=EventKind.MEMBERS_CHANGED,
                now=now,
                actor_id=viewer.id,
                payload={"added": [], "removed": [], "roles": {str(user_id): role}},
            )
            await outbox.system_message(
                session,
                conversation_id=conversation_id,
                body=f"{viewer.display_name} made {subject.display_name} {_role_phrase(role)}",
                now=now,
            )
        await session.refresh(target)
    await outbox.publish(ctx.services.publisher)
    return target


def _role_phrase(role: Role) -> str:
    return {Role.OWNER: "the owner", Role.ADMIN: "an admin", Role.MEMBER: "a member"}[role]


async def leave(ctx: Context, *, conversation_id: int) -> bool:
    viewer = await ctx.require_viewer()
    outbox = Outbox()
    now = ctx.now
    async with ctx.db.transaction() as session:
        conversation = await locked_conversation(session, conversation_id)
        own = await conversations.get_membership(
            session,
            conversation_id=conversation_id,
            user_id=viewer.id,
        )
        if conversation is None or own is None:
            raise not_found(conversation_id)
        if conversation.kind == ConversationKind.DIRECT:
            raise BadUserInput("You cannot leave a direct conversation.")
        await conversations.remove_member(
            session,
            conversation_id=conversation_id,
            user_id=viewer.id,
        )
        body = f"{viewer.display_name} left"
        if own.role == Role.OWNER:
            heir = _heir(await conversations.all_members(session, conversation_id=conversation_id))
            if heir is not None:
                await conversations.set_role(
                    session, conversation_id=conversation_id, user_id=heir.user_id, role=Role.OWNER
                )
                heir_user = (await users.get_users(session, ids=[heir.user_id]))[0]
                body += f"; {heir_user.display_name} is now the owner"
        await record_removal(session, outbox, conversation_id, viewer, [viewer], now=now, body=body)
    await outbox.publish(ctx.services.publisher)
    return True


def _heir(remaining: list[MembershipRow]) -> MembershipRow | None:
    """The longest-standing admin, else the longest-standing member."""
    by_tenure = sorted(remaining, key=lambda m: (m.joined_at, m.id))
    admins = [m for m in by_tenure if m.role == Role.ADMIN]
    candidates = admins or by_tenure
    return candidates[0] if candidates else None


# -------------------------------------------------------------------- helpers


async def locked_conversation(
    session: AsyncSession, conversation_id: int
) -> ConversationRow | None:
    """The conversation, locked until commit so membership changes line up (PostgreSQL)."""
    return await conversations.lock_conversation(session, conversation_id=conversation_id)


async def managed_group(
    session: AsyncSession, group_id: int, viewer: UserRow, *, need: Role
) -> tuple[ConversationRow, MembershipRow]:
    group = await locked_conversation(session, group_id)
    own = await conversations.get_membership(session, conversation_id=group_id, user_id=viewer.id)
    if group is None or (own is None and not group.is_public):
        raise not_found(group_id)
    if group.kind != ConversationKind.GROUP:
        raise BadUserInput("Direct conversations have exactly two members and no settings.")
    if own is None:
        raise Forbidden("Only members of this group can do that.")
    if ROLE_RANK[Role(own.role)] < ROLE_RANK[need]:
        raise Forbidden("Only the group's owner and admins can do that.")
    return group, own


async def existing_users(session: AsyncSession, user_ids: list[int]) -> list[UserRow]:
    wanted = list(dict.fromkeys(user_ids))
    if len(wanted) > validation.MAX_IDS:
        raise BadUserInput(f"At most {validation.MAX_IDS} users at once.", field="userIds")
    found = {u.id: u for u in await users.get_users(session, ids=wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound("No user has one of those IDs.")
    return [found[i] for i in wanted]


async def add_new_members(
    session: AsyncSession,
    outbox: Outbox,
    group: ConversationRow,
    actor: UserRow,
    new: list[UserRow],
    *,
    now: Any,
) -> None:
    assert group.id is not None
    for user in new:
        await conversations.add_member(
            session,
            conversation_id=group.id,
            user_id=user.id,
            role=Role.MEMBER,
            now=now,
        )
        outbox.notify_user(user.id, JOINED, group.id)
    await outbox.record(
        session,
        conversation_id=group.id,
        kind=EventKind.MEMBERS_CHANGED,
        now=now,
        actor_id=actor.id,
        payload={"added": [u.id for u in new], "removed": []},
    )
    if new == [actor]:
        body = f"{actor.display_name} joined"
    else:
        body = f"{actor.display_name} added {names(new)}"
    added = await outbox.system_message(session, conversation_id=group.id, body=body, now=now)
    await read_up_to(session, group.id, new, added.seq)


async def read_up_to(
    session: AsyncSession, conversation_id: int, members: list[UserRow], seq: int
) -> None:
    """Newcomers start with the history read: what came before they joined is not news."""
    for user in members:
        await conversations.move_read_marker(
            session, conversation_id=conversation_id, user_id=user.id, seq=seq
        )


async def record_removal(
    session: AsyncSession,
    outbox: Outbox,
    conversation_id: int,
    actor: UserRow,
    removed: list[UserRow],
    *,
    now: Any,
    body: str,
) -> None:
    await outbox.record(
        session,
        conversation_id=conversation_id,
        kind=EventKind.MEMBERS_CHANGED,
        now=now,
        actor_id=actor.id,
        payload={"added": [], "removed": [u.id for u in removed]},
    )
    await outbox.system_message(session, conversation_id=conversation_id, body=body, now=now)
    for user in removed:
        outbox.notify_user(user.id, LEFT, conversation_id)

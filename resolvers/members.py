"""Membership changes: adding, removing, roles, joining, leaving; and what they announce."""

from __future__ import annotations

from db import conversations, users
from db.models import ConversationKind, ConversationRow, EventKind, MembershipRow, Role, UserRow
from resolvers import validation
from resolvers.access import (
    managed_group,
    may_grant,
    outranks,
    previewable,
)
from resolvers.context import Context
from resolvers.live.publisher import Notice
from resolvers.unit_of_work import UnitOfWork
from schema.errors import BadUserInput, Forbidden, NotFound


async def add_members(
    ctx: Context,
    *,
    conversation_id: int,
    user_ids: list[int],
    kind: ConversationKind | None = None,
) -> ConversationRow:
    viewer = await ctx.require_viewer()
    if not user_ids:
        raise BadUserInput("Name at least one user to add.", field="userIds")
    async with ctx.db.transaction() as work:
        group, _ = await managed_group(work, conversation_id, viewer, need=Role.ADMIN, kind=kind)
        found = await existing_users(work, user_ids)
        current = {
            m.user_id
            for m in await conversations.all_members(work.session, conversation_id=conversation_id)
        }
        new = [user for user in found if user.id not in current]
        if new:
            await add_new_members(work, group, viewer, new)
            await work.session.refresh(group)
    ctx.loaders.remember(group)
    return group


async def join_group(ctx: Context, *, group_id: int) -> ConversationRow:
    """Join a public group (a no-op for a member). A group nobody is left in goes to
    the first to join it, as its owner: a public group is never without one for good
    (while anyone is in it, leaving hands ownership on, see ``leave``)."""
    viewer = await ctx.require_viewer()
    async with ctx.db.transaction() as work:
        group = await work.lock_conversation(group_id)
        if group is None or group.kind != ConversationKind.GROUP:
            raise NotFound.of_conversation()
        membership = await conversations.get_membership(
            work.session, conversation_id=group_id, user_id=viewer.id
        )
        if membership is None:
            if not previewable(group):
                raise NotFound.of_conversation()
            remaining = await conversations.all_members(work.session, conversation_id=group_id)
            await add_new_members(
                work, group, viewer, [viewer], role=Role.MEMBER if remaining else Role.OWNER
            )
            await work.session.refresh(group)
    ctx.loaders.remember(group)
    return group


async def remove_member(
    ctx: Context, *, conversation_id: int, user_id: int, kind: ConversationKind | None = None
) -> ConversationRow:
    viewer = await ctx.require_viewer()
    if user_id == viewer.id:
        raise BadUserInput("To remove yourself, use leaveConversation.", field="userId")
    async with ctx.db.transaction() as work:
        group, own = await managed_group(work, conversation_id, viewer, need=Role.ADMIN, kind=kind)
        target = await conversations.get_membership(
            work.session, conversation_id=conversation_id, user_id=user_id
        )
        if target is None:
            raise NotFound("That user is not a member of this group.")
        if not outranks(own, target):
            raise Forbidden("You can only remove members with a lower role than yours.")
        removed = (await existing_users(work, [user_id]))[0]
        await conversations.remove_member(
            work.session, conversation_id=conversation_id, user_id=user_id
        )
        await record_removal(
            work,
            conversation_id,
            viewer,
            [removed],
            body=f"{viewer.display_name} removed {removed.display_name}",
        )
        await work.session.refresh(group)
    ctx.loaders.remember(group)
    return group


async def set_member_role(
    ctx: Context,
    *,
    conversation_id: int,
    user_id: int,
    role: Role,
    kind: ConversationKind | None = None,
) -> MembershipRow:
    """Owners set any role (OWNER hands ownership over); admins promote members to admin."""
    viewer = await ctx.require_viewer()
    async with ctx.db.transaction() as work:
        _, own = await managed_group(work, conversation_id, viewer, need=Role.ADMIN, kind=kind)
        target = await conversations.get_membership(
            work.session, conversation_id=conversation_id, user_id=user_id
        )
        if target is None:
            raise NotFound("That user is not a member of this group.")
        if user_id == viewer.id:
            raise BadUserInput(
                "You cannot change your own role; an owner hands ownership to someone else."
            )
        if not outranks(own, target) or not may_grant(own, role):
            raise Forbidden("Your role does not allow that change.")
        if role != target.role:
            await conversations.set_role(
                work.session, conversation_id=conversation_id, user_id=user_id, role=role
            )
            if role == Role.OWNER:
                await conversations.set_role(
                    work.session,
                    conversation_id=conversation_id,
                    user_id=viewer.id,
                    role=Role.ADMIN,
                )
            subject = (await existing_users(work, [user_id]))[0]
            await work.record(
                conversation_id=conversation_id,
                kind=EventKind.MEMBERS_CHANGED,
                actor_id=viewer.id,
                payload={"added": [], "removed": [], "roles": {str(user_id): role}},
            )
            await work.system_message(
                conversation_id=conversation_id,
                body=f"{viewer.display_name} made {subject.display_name} {_role_phrase(role)}",
            )
        await work.session.refresh(target)
    return target


def _role_phrase(role: Role) -> str:
    return {Role.OWNER: "the owner", Role.ADMIN: "an admin", Role.MEMBER: "a member"}[role]


async def leave(
    ctx: Context, *, conversation_id: int, kind: ConversationKind | None = None
) -> bool:
    viewer = await ctx.require_viewer()
    async with ctx.db.transaction() as work:
        conversation = await work.lock_conversation(conversation_id)
        own = await conversations.get_membership(
            work.session, conversation_id=conversation_id, user_id=viewer.id
        )
        if conversation is None or own is None or (kind is not None and conversation.kind != kind):
            raise NotFound.of_conversation()
        if conversation.kind == ConversationKind.DIRECT:
            raise BadUserInput("You cannot leave a direct conversation.")
        await conversations.remove_member(
            work.session, conversation_id=conversation_id, user_id=viewer.id
        )
        body = f"{viewer.display_name} left"
        if own.role == Role.OWNER:
            remaining = await conversations.all_members(
                work.session, conversation_id=conversation_id
            )
            heir = _heir(remaining)
            if heir is not None:
                await conversations.set_role(
                    work.session,
                    conversation_id=conversation_id,
                    user_id=heir.user_id,
                    role=Role.OWNER,
                )
                heir_user = (await existing_users(work, [heir.user_id]))[0]
                body += f"; {heir_user.display_name} is now the owner"
        await record_removal(work, conversation_id, viewer, [viewer], body=body)
    return True


def _heir(remaining: list[MembershipRow]) -> MembershipRow | None:
    """The longest-standing admin, else the longest-standing member."""
    by_tenure = sorted(remaining, key=lambda m: (m.joined_at, m.id))
    admins = [m for m in by_tenure if m.role == Role.ADMIN]
    candidates = admins or by_tenure
    return candidates[0] if candidates else None


# -------------------------------------------------------------------- helpers


def names(people: list[UserRow]) -> str:
    """'Ann', 'Ann and Bob', 'Ann, Bob and Cy' — for SYSTEM message bodies."""
    labels = [user.display_name for user in people]
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


async def existing_users(work: UnitOfWork, user_ids: list[int]) -> list[UserRow]:
    """The users, in the order asked; NOT_FOUND if any of them does not exist."""
    wanted = list(dict.fromkeys(user_ids))
    if len(wanted) > validation.MAX_IDS:
        raise BadUserInput(f"At most {validation.MAX_IDS} users at once.", field="userIds")
    found = {u.id: u for u in await users.get_users(work.session, ids=wanted)}
    if any(i not in found for i in wanted):
        raise NotFound("No user has one of those IDs.")
    return [found[i] for i in wanted]


async def add_new_members(
    work: UnitOfWork,
    group: ConversationRow,
    actor: UserRow,
    new: list[UserRow],
    *,
    role: Role = Role.MEMBER,
) -> None:
    for user in new:
        await conversations.add_member(
            work.session, conversation_id=group.id, user_id=user.id, role=role, now=work.now
        )
        work.notify(user.id, Notice.CONVERSATION_JOINED, group.id)
    await work.record(
        conversation_id=group.id,
        kind=EventKind.MEMBERS_CHANGED,
        actor_id=actor.id,
        payload={"added": [u.id for u in new], "removed": []},
    )
    if new == [actor]:
        body = f"{actor.display_name} joined"
        if role == Role.OWNER:
            body += " and is now the owner"
    else:
        body = f"{actor.display_name} added {names(new)}"
    added = await work.system_message(conversation_id=group.id, body=body)
    await read_up_to(work, group.id, new, added.seq)


async def read_up_to(
    work: UnitOfWork, conversation_id: int, members: list[UserRow], seq: int
) -> None:
    """Newcomers start with the history read: what came before they joined is not news."""
    for user in members:
        await conversations.move_read_marker(
            work.session, conversation_id=conversation_id, user_id=user.id, seq=seq
        )


async def record_removal(
    work: UnitOfWork, conversation_id: int, actor: UserRow, removed: list[UserRow], *, body: str
) -> None:
    await work.record(
        conversation_id=conversation_id,
        kind=EventKind.MEMBERS_CHANGED,
        actor_id=actor.id,
        payload={"added": [], "removed": [u.id for u in removed]},
    )
    await work.system_message(conversation_id=conversation_id, body=body)
    for user in removed:
        work.notify(user.id, Notice.CONVERSATION_LEFT, conversation_id)

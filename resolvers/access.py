"""Who may read, write and manage a conversation: every such rule, in one place.

- Members read and write their conversations.
- A public group can also be previewed (read and subscribed to) by anyone
  signed in; writing needs joining first (FORBIDDEN until then).
- Private groups and direct conversations do not exist for non-members:
  NOT_FOUND, with the same message as for an id nobody has.
- Owners and admins manage a group; ``ROLE_RANK`` orders what they may do.
- A live stream ends (FORBIDDEN) once the timeline says its viewer may no
  longer read: ``StreamAccess`` decides that from each event.

Ids are checked here too: a conversation id of the wrong kind (a
DirectConversation id naming a group) is treated like an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass

from db import conversations, messages
from db.models import (
    ROLE_RANK,
    ConversationKind,
    ConversationRow,
    EventKind,
    MembershipRow,
    MessageKind,
    MessageRow,
    Role,
    UserRow,
)
from resolvers.context import Context
from resolvers.live.snapshots import SharedEvent
from resolvers.unit_of_work import UnitOfWork
from schema.errors import BadUserInput, Forbidden, NotFound


@dataclass(frozen=True, slots=True)
class Access:
    """A conversation as the viewer may see it; ``membership`` is None for a public preview."""

    conversation: ConversationRow
    membership: MembershipRow | None


@dataclass(frozen=True, slots=True)
class MemberAccess:
    """A conversation the viewer may write to, as one of its members."""

    conversation: ConversationRow
    membership: MembershipRow


def previewable(conversation: ConversationRow) -> bool:
    """Whether non-members may read it: public groups only."""
    return conversation.kind == ConversationKind.GROUP and conversation.is_public


def _found(conversation: ConversationRow | None, kind: ConversationKind | None) -> ConversationRow:
    if conversation is None or (kind is not None and conversation.kind != kind):
        raise NotFound.of_conversation()
    return conversation


# ------------------------------------------------------------------- reading


async def readable(
    ctx: Context, conversation_id: int, *, kind: ConversationKind | None = None
) -> Access:
    """The conversation if the viewer may read it (member, or a public preview); else NOT_FOUND.

    ``kind`` is the kind the client's id named, when the id came from a client.
    """
    await ctx.require_viewer()
    membership = await ctx.loaders.viewer_memberships.load(conversation_id)
    conversation = _found(await ctx.loaders.conversations.load(conversation_id), kind)
    if membership is None and not previewable(conversation):
        raise NotFound.of_conversation()
    return Access(conversation=conversation, membership=membership)


async def visible_message(ctx: Context, message_id: int) -> MessageRow:
    """The message if the viewer may read its conversation; else NOT_FOUND."""
    await ctx.require_viewer()
    message = await ctx.loaders.messages.load(message_id)
    if message is None:
        raise NotFound.of_message()
    try:
        await readable(ctx, message.conversation_id)
    except NotFound:
        raise NotFound.of_message() from None
    return message


# ------------------------------------------------------------------- writing


async def writable(
    work: UnitOfWork, conversation_id: int, viewer: UserRow, *, kind: ConversationKind | None = None
) -> MemberAccess:
    """Lock the conversation, then check the viewer is a member.

    Every write to a conversation takes its row lock first, so a check cannot
    go stale before the write it guards commits, and the lock order is the
    same everywhere.
    """
    conversation = _found(await work.lock_conversation(conversation_id), kind)
    membership = await conversations.get_membership(
        work.session, conversation_id=conversation_id, user_id=viewer.id
    )
    if membership is None:
        if previewable(conversation):
            raise Forbidden("Join this group before you write to it.")
        raise NotFound.of_conversation()
    return MemberAccess(conversation=conversation, membership=membership)


async def changeable_message(
    work: UnitOfWork, message_id: int, viewer: UserRow
) -> tuple[MessageRow, MemberAccess]:
    """The message, read again under its conversation's lock, if the viewer is a member."""
    found = await messages.get_messages(work.session, ids=[message_id])
    if not found:
        raise NotFound.of_message()
    try:
        access = await writable(work, found[0].conversation_id, viewer)
    except NotFound:
        raise NotFound.of_message() from None
    # Read again under the lock: a concurrent edit or delete committed
    # meanwhile must be seen, not overwritten.
    message = await messages.reread_message(work.session, message_id=message_id)
    if message is None:
        raise NotFound.of_message()
    return message, access


def may_edit(message: MessageRow, viewer: UserRow) -> bool:
    return message.author_id == viewer.id and message.kind == MessageKind.TEXT


def may_delete(message: MessageRow, access: MemberAccess, viewer: UserRow) -> bool:
    """The author, or in a group its owner and admins (moderation)."""
    if message.author_id == viewer.id:
        return True
    return (
        access.conversation.kind == ConversationKind.GROUP
        and ROLE_RANK[Role(access.membership.role)] >= ROLE_RANK[Role.ADMIN]
    )


# ------------------------------------------------------------------ managing


async def managed_group(
    work: UnitOfWork,
    group_id: int,
    viewer: UserRow,
    *,
    need: Role,
    kind: ConversationKind | None = None,
) -> tuple[ConversationRow, MembershipRow]:
    """The group, locked, if the viewer's role is at least ``need``."""
    group = _found(await work.lock_conversation(group_id), kind)
    own = await conversations.get_membership(
        work.session, conversation_id=group_id, user_id=viewer.id
    )
    if own is None and not previewable(group):
        raise NotFound.of_conversation()
    if group.kind != ConversationKind.GROUP:
        raise BadUserInput("Direct conversations have exactly two members and no settings.")
    if own is None:
        raise Forbidden("Only members of this group can do that.")
    if ROLE_RANK[Role(own.role)] < ROLE_RANK[need]:
        raise Forbidden("Only the group's owner and admins can do that.")
    return group, own


def outranks(actor: MembershipRow, target: MembershipRow) -> bool:
    """Whether the actor's role is above the target's (needed to remove or re-role it)."""
    return ROLE_RANK[Role(actor.role)] > ROLE_RANK[Role(target.role)]


def may_grant(actor: MembershipRow, role: Role) -> bool:
    """Owners grant any role (OWNER hands ownership over); admins grant up to admin."""
    return ROLE_RANK[role] <= ROLE_RANK[Role(actor.role)]


# ---------------------------------------------------------------- live streams


class StreamAccess:
    """Whether a live stream's viewer may still read the conversation, from its timeline.

    Streams check access once when they start, then follow the timeline:
    a removal of the viewer ends the stream, and so does a public group
    turning private while the viewer only previews it.
    """

    def __init__(self, viewer_id: int, *, member: bool) -> None:
        self.viewer_id = viewer_id
        self.member = member

    def lost_by(self, event: SharedEvent) -> Forbidden | None:
        """Take the event into account; the error ending the stream, if it ends it."""
        if event.kind == EventKind.MEMBERS_CHANGED:
            if self.viewer_id in event.user_ids("removed"):
                self.member = False
                return Forbidden("You are no longer a member of this conversation.")
            if self.viewer_id in event.user_ids("added"):
                self.member = True
        elif event.kind == EventKind.CONVERSATION_UPDATED and not self.member:
            if not previewable(event.conversation):
                return Forbidden("This group is no longer public.")
        return None

    def rejoined(self) -> None:
        """A replayed removal turned out to be undone later: the viewer is a member again."""
        self.member = True


async def still_readable(
    ctx: Context, conversation_id: int, access: StreamAccess
) -> Forbidden | None:
    """Check a stream's access again, from the database: the error that ends it, if any.

    For a stream that starts following the timeline after it checked access:
    a removal (or a group turning private) in between is not in the feed.
    """
    async with ctx.services.short_session() as session:
        membership = await conversations.get_membership(
            session, conversation_id=conversation_id, user_id=access.viewer_id
        )
        found = await conversations.get_conversations(session, ids=[conversation_id])
    if membership is not None:
        access.member = True
        return None
    if access.member:
        return Forbidden("You are no longer a member of this conversation.")
    if not found or not previewable(found[0]):
        return Forbidden("This group is no longer public.")
    return None

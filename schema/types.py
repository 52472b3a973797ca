"""Object types of the API, converted explicitly from the database rows.

Relationship fields read through the per-operation DataLoaders in the
context; these classes never open a session themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

import strawberry
from strawberry import Private
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from db.messages import ReactionSummary
from db.models import (
    ConversationKind,
    ConversationRow,
    MembershipRow,
    MessageKind,
    MessageRow,
    Role,
    UserRow,
)
from resolvers import conversations as conversation_resolvers
from resolvers import messages as message_resolvers
from resolvers.loaders import ViewerNeeded
from resolvers.paging import Page
from schema.errors import NotFound
from schema.ids import conversation_global_id, encode_global_id

if TYPE_CHECKING:
    from resolvers.context import Context

    ContextInfo = Info[Context, None]
else:
    ContextInfo = Info


@strawberry.interface(name="Node")
class Node:
    id: strawberry.ID


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.edges[0][0] if page.edges else None,
            end_cursor=page.edges[-1][0] if page.edges else None,
        )


NodeT = TypeVar("NodeT")
Row = TypeVar("Row")
Loaded = TypeVar("Loaded")
Converted = TypeVar("Converted")


def now_or_later(loading: Awaitable[Loaded], convert: Callable[[Loaded], Converted]) -> Converted:
    """``convert`` of what a loader gives: now when the loader holds it already, else later.

    graphql-core awaits what a resolver returns when it is awaitable, and
    takes it as it is otherwise. A field whose value the loader already
    holds (fetched ahead for a whole page, see ``message_connection``, or
    primed) costs no coroutine, task or gather this way; only the others
    wait for their batch.
    """
    if (
        isinstance(loading, asyncio.Future)
        and loading.done()
        and not loading.cancelled()
        and loading.exception() is None
    ):
        return convert(loading.result())

    async def later() -> Converted:
        return convert(await loading)

    # An awaitable in place of the value, which graphql-core awaits.
    return cast("Converted", later())


# Strawberry names each use after its node type: Edge[User] is "UserEdge".
@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Row], node: Callable[[Row], NodeT]) -> Self:
        return cls(
            edges=[Edge(cursor=cursor, node=node(row)) for cursor, row in page.edges],
            page_info=PageInfo.of(page),
        )


# ------------------------------------------------------------------------ users


@strawberry.type(name="User")
class User(Node):
    db_id: Private[int]
    username: str
    display_name: str
    avatar_url: str | None
    created_at: datetime
    last_seen_at: datetime | None

    @strawberry.field(
        description="Online while the user has at least one live connection on any server node."
    )
    async def online(self, info: ContextInfo) -> bool:
        return await info.context.loaders.online.load(self.db_id)

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(
            id=strawberry.ID(encode_global_id("User", row.id)),
            db_id=row.id,
            username=row.username,
            display_name=row.display_name,
            avatar_url=row.avatar_url,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
        )


# ---------------------------------------------------------------- conversations


# The tables' enums are the API's: one list of values, not two kept in step.
strawberry.enum(Role, name="MemberRole")


@strawberry.type(name="Member")
class Member:
    user_db_id: Private[int]
    role: Role
    joined_at: datetime
    last_read_seq: int = strawberry.field(
        description="Read marker: the highest seq this member has read."
    )

    @strawberry.field
    async def user(self, info: ContextInfo) -> User:
        return await required_user(info, self.user_db_id)

    @classmethod
    def from_row(cls, row: MembershipRow) -> Member:
        return cls(
            user_db_id=row.user_id,
            role=Role(row.role),
            joined_at=row.joined_at,
            last_read_seq=row.last_read_seq,
        )


@strawberry.type(name="MemberConnection")
class MemberConnection(Connection[Member]):
    total_count: int

    @classmethod
    def of_members(cls, page: Page[MembershipRow]) -> MemberConnection:
        return cls(
            edges=[Edge(cursor=c, node=Member.from_row(row)) for c, row in page.edges],
            page_info=PageInfo.of(page),
            total_count=page.total_count or 0,
        )


@strawberry.interface(
    name="Conversation",
    description="A direct conversation between two users, or a group. Only members can see it.",
)
class Conversation(Node):
    db_id: Private[int]
    created_at: datetime
    last_activity_at: datetime = strawberry.field(
        description="Time of the newest timeline event; conversations are listed newest first."
    )
    last_seq: int = strawberry.field(
        description="Seq of the newest timeline event (0 when there is none)."
    )

    @strawberry.field
    async def last_message(self, info: ContextInfo) -> Message | None:
        row = await info.context.loaders.last_messages.load(self.db_id)
        return Message.from_row(row) if row is not None else None

    @strawberry.field(description="Messages by others with a seq above the viewer's read marker.")
    async def unread_count(self, info: ContextInfo) -> int:
        if await info.context.loaders.viewer_memberships.load(self.db_id) is None:
            return 0
        return await info.context.loaders.unread_counts.load(self.db_id)

    @strawberry.field
    async def viewer_last_read_seq(self, info: ContextInfo) -> int:
        membership = await info.context.loaders.viewer_memberships.load(self.db_id)
        return membership.last_read_seq if membership is not None else 0

    @strawberry.field
    async def members(
        self, info: ContextInfo, first: int | None = 50, after: str | None = None
    ) -> MemberConnection:
        page = await conversation_resolvers.members(
            info.context, conversation_id=self.db_id, first=first, after=after
        )
        return MemberConnection.of_members(page)

    @strawberry.field(
        description="History, oldest first within a page; `last: N` gives the newest N."
    )
    async def messages(
        self,
        info: ContextInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Message]:
        page = await message_resolvers.history(
            info.context,
            conversation_id=self.db_id,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return await message_connection(info, page)


@strawberry.type(name="Group")
class Group(Conversation):
    title: str
    description: str | None
    avatar_url: str | None
    is_public: bool = strawberry.field(
        description="Public groups can be found with publicGroups and joined by anyone."
    )

    @strawberry.field(
        description="The viewer's role; MEMBER for a public group the viewer has not joined "
        "(see viewerIsMember)."
    )
    async def viewer_role(self, info: ContextInfo) -> Role:
        membership = await info.context.loaders.viewer_memberships.load(self.db_id)
        return Role(membership.role) if membership is not None else Role.MEMBER

    @strawberry.field(description="False while the viewer only previews a public group.")
    async def viewer_is_member(self, info: ContextInfo) -> bool:
        return await info.context.loaders.viewer_memberships.load(self.db_id) is not None

    @strawberry.field
    async def member_count(self, info: ContextInfo) -> int:
        return await info.context.loaders.member_counts.load(self.db_id)


@strawberry.type(name="DirectConversation")
class DirectConversation(Conversation):
    @strawberry.field(description="The other participant.")
    async def peer(self, info: ContextInfo) -> User:
        peer_id = await info.context.loaders.peers.load(self.db_id)
        return await required_user(info, peer_id)


def conversation_from_row(row: ConversationRow) -> Group | DirectConversation:
    if row.kind == ConversationKind.DIRECT:
        return DirectConversation(
            id=strawberry.ID(conversation_global_id(row.kind, row.id)),
            db_id=row.id,
            created_at=row.created_at,
            last_activity_at=row.last_activity_at,
            last_seq=row.last_seq,
        )
    return Group(
        id=strawberry.ID(conversation_global_id(row.kind, row.id)),
        db_id=row.id,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        last_seq=row.last_seq,
        title=row.title or "",
        description=row.description,
        avatar_url=row.avatar_url,
        is_public=row.is_public,
    )


def group_from_row(row: ConversationRow) -> Group:
    group = conversation_from_row(row)
    if not isinstance(group, Group):  # resolvers hand only groups here
        raise NotFound.of_conversation()
    return group


def direct_from_row(row: ConversationRow) -> DirectConversation:
    direct = conversation_from_row(row)
    if not isinstance(direct, DirectConversation):
        raise NotFound.of_conversation()
    return direct


# --------------------------------------------------------------------- messages


strawberry.enum(
    MessageKind,
    name="MessageKind",
    description="TEXT is written by a user; SYSTEM by the server (member joined, left, "
    "title changed…).",
)


@strawberry.type(name="Reaction")
class Reaction:
    emoji: str
    count: int
    reacted: Private[bool | None]

    @strawberry.field
    def viewer_has_reacted(self) -> bool:
        if self.reacted is None:  # rendered for every viewer at once: ask for this one
            raise ViewerNeeded("viewerHasReacted differs from viewer to viewer")
        return self.reacted


@strawberry.type(name="Message")
class Message(Node):
    db_id: Private[int]
    conversation_db_id: Private[int]
    author_db_id: Private[int | None]
    reply_to_db_id: Private[int | None]
    seq: int = strawberry.field(
        description="Seq of the timeline event that added it: increasing within the conversation."
    )
    kind: MessageKind
    body: str | None = strawberry.field(
        description="Plain text as sent (never HTML); null once deleted."
    )
    client_message_id: str | None = strawberry.field(
        description="The sender's idempotency key: resending with the same key returns the same "
        "message."
    )
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None

    # The relationship fields resolve at once from what the loaders hold (a
    # page fetches them ahead for all its messages); see now_or_later.

    @strawberry.field
    def conversation(self, info: ContextInfo) -> Conversation:
        return now_or_later(
            info.context.loaders.conversations.load(self.conversation_db_id), _message_conversation
        )

    @strawberry.field(description="Null for SYSTEM messages.")
    def author(self, info: ContextInfo) -> User | None:
        if self.author_db_id is None:
            return None
        return now_or_later(info.context.loaders.users.load(self.author_db_id), _user_or_none)

    @strawberry.field
    def reply_to(self, info: ContextInfo) -> Message | None:
        if self.reply_to_db_id is None:
            return None
        return now_or_later(
            info.context.loaders.messages.load(self.reply_to_db_id), _message_or_none
        )

    @strawberry.field
    def reactions(self, info: ContextInfo) -> list[Reaction]:
        return now_or_later(info.context.loaders.reactions.load(self.db_id), _reactions)

    @classmethod
    def from_row(cls, row: MessageRow) -> Message:
        return cls(
            id=strawberry.ID(encode_global_id("Message", row.id)),
            db_id=row.id,
            conversation_db_id=row.conversation_id,
            author_db_id=row.author_id,
            reply_to_db_id=row.reply_to_id,
            seq=row.seq,
            kind=MessageKind(row.kind),
            body=row.body,
            client_message_id=row.client_message_id,
            created_at=row.created_at,
            edited_at=row.edited_at,
            deleted_at=row.deleted_at,
        )


def _message_conversation(row: ConversationRow | None) -> Conversation:
    if row is None:  # a message's conversation is never deleted without it
        raise NotFound.of_conversation()
    return conversation_from_row(row)


def _user_or_none(row: UserRow | None) -> User | None:
    return User.from_row(row) if row is not None else None


def _message_or_none(row: MessageRow | None) -> Message | None:
    return Message.from_row(row) if row is not None else None


def _reactions(summaries: list[ReactionSummary]) -> list[Reaction]:
    return [Reaction(emoji=s.emoji, count=s.count, reacted=s.viewer_has_reacted) for s in summaries]


async def message_connection(info: ContextInfo, page: Page[MessageRow]) -> Connection[Message]:
    """A page of messages, with what its messages' fields will ask of the loaders fetched ahead.

    The same batched statements the fields would make one by one (authors,
    replied-to messages, reactions, each only when the document selects
    it), made before the fields resolve, so that each field resolves at once
    instead of waiting on its own coroutine. A failure is left in the loader,
    where the field that needs the value meets it as before.
    """
    rows = [row for _, row in page.edges]
    wanted = _node_fields(info.selected_fields)
    loaders = info.context.loaders
    ahead: list[Awaitable[Any]] = []
    if "author" in wanted:
        authors = {row.author_id for row in rows if row.author_id is not None}
        ahead.append(loaders.users.load_many(sorted(authors)))
    if "replyTo" in wanted:
        replied = {row.reply_to_id for row in rows if row.reply_to_id is not None}
        ahead.append(loaders.messages.load_many(sorted(replied)))
    if "reactions" in wanted:
        ahead.append(loaders.reactions.load_many([row.id for row in rows]))
    if ahead:
        await asyncio.gather(*ahead, return_exceptions=True)
    return Connection.of(page, Message.from_row)


def _node_fields(selected: Iterable[Selection]) -> set[str]:
    """Names of the fields selected under ``edges { node { … } }`` of a connection field."""
    found: set[str] = set()
    for connection in _fields(selected):
        for edges in _fields(connection.selections):
            if edges.name == "edges":
                for node in _fields(edges.selections):
                    if node.name == "node":
                        found.update(field.name for field in _fields(node.selections))
    return found


def _fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    """The fields among selections, those inside fragments included."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


async def required_user(info: ContextInfo, user_id: int) -> User:
    """A user that a row refers to (memberships cascade with their users, so it exists)."""
    row = await info.context.loaders.users.load(user_id)
    if row is None:
        raise NotFound.of_user()
    return User.from_row(row)

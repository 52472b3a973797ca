"""The Query root: thin fields that decode ids and call into ``resolvers``."""

from __future__ import annotations

import strawberry

from db.models import ConversationKind
from resolvers import access, conversations, messages, search, users
from schema.errors import NotFound
from schema.ids import decode_conversation_id, decode_global_id, decode_id_of
from schema.types import (
    Connection,
    ContextInfo,
    Conversation,
    Group,
    Message,
    Node,
    User,
    conversation_from_row,
    group_from_row,
    message_connection,
)


@strawberry.type(name="Query")
class Query:
    @strawberry.field
    async def node(self, info: ContextInfo, id: strawberry.ID) -> Node | None:
        type_name, key = decode_global_id(id)
        try:
            if type_name == "User":
                row = await users.by_id(info.context, key)
                return User.from_row(row) if row is not None else None
            if type_name == "Message":
                return Message.from_row(await access.visible_message(info.context, key))
            key, kind = decode_conversation_id(id)
            readable = await access.readable(info.context, key, kind=kind)
            return conversation_from_row(readable.conversation)
        except NotFound:
            return None

    @strawberry.field(description="The signed-in user; UNAUTHENTICATED without a valid token.")
    async def viewer(self, info: ContextInfo) -> User:
        return User.from_row(await info.context.require_viewer())

    @strawberry.field
    async def user(self, info: ContextInfo, id: strawberry.ID) -> User | None:
        type_name, key = decode_global_id(id)
        if type_name != "User":
            return None
        row = await users.by_id(info.context, key)
        return User.from_row(row) if row is not None else None

    @strawberry.field
    async def user_by_username(self, info: ContextInfo, username: str) -> User | None:
        row = await users.by_username(info.context, username)
        return User.from_row(row) if row is not None else None

    @strawberry.field(description="Case-insensitive prefix search on username and display name.")
    async def users(
        self,
        info: ContextInfo,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[User]:
        page = await users.search(info.context, search=search, first=first, after=after)
        return Connection.of(page, User.from_row)

    @strawberry.field
    async def conversation(self, info: ContextInfo, id: strawberry.ID) -> Conversation | None:
        key, kind = decode_conversation_id(id)
        readable = await access.readable(info.context, key, kind=kind)
        return conversation_from_row(readable.conversation)

    @strawberry.field(description="The viewer's conversations, newest activity first.")
    async def conversations(
        self, info: ContextInfo, first: int | None = 20, after: str | None = None
    ) -> Connection[Conversation]:
        page = await conversations.list_for_viewer(info.context, first=first, after=after)
        return Connection.of(page, conversation_from_row)

    @strawberry.field(description="The viewer's groups.")
    async def groups(
        self, info: ContextInfo, first: int | None = 20, after: str | None = None
    ) -> Connection[Group]:
        page = await conversations.list_for_viewer(
            info.context, first=first, after=after, kind=ConversationKind.GROUP
        )
        return Connection.of(page, group_from_row)

    @strawberry.field
    async def public_groups(
        self,
        info: ContextInfo,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Group]:
        page = await conversations.public_groups(
            info.context, search=search, first=first, after=after
        )
        return Connection.of(page, group_from_row)

    @strawberry.field(description="A conversation's history; same paging as Conversation.messages.")
    async def messages(
        self,
        info: ContextInfo,
        conversation_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Message]:
        key, kind = decode_conversation_id(conversation_id)
        page = await messages.history(
            info.context,
            conversation_id=key,
            kind=kind,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return await message_connection(info, page)

    @strawberry.field(
        description="Jump to a message: up to `before` messages before it, the message, and up "
        "to `after` after it, oldest first; pageInfo pages on from there."
    )
    async def message_context(
        self,
        info: ContextInfo,
        message_id: strawberry.ID,
        before: int | None = 25,
        after: int | None = 25,
    ) -> Connection[Message]:
        key = decode_id_of(message_id, "Message")
        page = await messages.context_around(
            info.context,
            message_id=key,
            before=25 if before is None else before,
            after=25 if after is None else after,
        )
        return await message_connection(info, page)

    @strawberry.field(
        description="Full-text search over the messages the viewer can read, best match first."
    )
    async def search_messages(
        self,
        info: ContextInfo,
        query: str,
        conversation_id: strawberry.ID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Message]:
        key, kind = (
            decode_conversation_id(conversation_id) if conversation_id is not None else (None, None)
        )
        page = await search.search_messages(
            info.context, text=query, conversation_id=key, kind=kind, first=first, after=after
        )
        return await message_connection(info, page)

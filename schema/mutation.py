"""The Mutation root: thin fields that decode ids and call into ``resolvers``."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import Role
from resolvers import auth, direct, groups, members, messages, users, validation
from resolvers.auth import SignedIn
from resolvers.live import signals
from schema.errors import BadUserInput
from schema.ids import decode_conversation_id, decode_id_of
from schema.inputs import (
    CreateGroupInput,
    LoginInput,
    OidcLoginInput,
    RegisterInput,
    SendMessageInput,
    UpdateGroupInput,
    UpdateProfileInput,
    given,
)
from schema.types import (
    ContextInfo,
    Conversation,
    DirectConversation,
    Group,
    Member,
    Message,
    User,
    conversation_from_row,
    direct_from_row,
    group_from_row,
)


@strawberry.type(name="AuthPayload")
class AuthPayload:
    access_token: str
    refresh_token: str = strawberry.field(
        description="Single use: refreshing returns a new pair; reusing an old one revokes the "
        "session."
    )
    access_token_expires_at: datetime
    user: User

    @classmethod
    def of(cls, signed_in: SignedIn) -> AuthPayload:
        return cls(
            access_token=signed_in.access_token,
            refresh_token=signed_in.refresh_token,
            access_token_expires_at=signed_in.access_token_expires_at,
            user=User.from_row(signed_in.user),
        )


def _user_ids(ids: list[strawberry.ID], *, field: str) -> list[int]:
    if len(ids) > validation.MAX_IDS:
        raise BadUserInput(f"At most {validation.MAX_IDS} users at once.", field=field)
    return [decode_id_of(i, "User") for i in ids]


@strawberry.type(name="Mutation")
class Mutation:
    @strawberry.mutation
    async def register(self, info: ContextInfo, input: RegisterInput) -> AuthPayload:
        signed_in = await auth.register(
            info.context,
            username=input.username,
            password=input.password,
            display_name=input.display_name,
        )
        return AuthPayload.of(signed_in)

    @strawberry.mutation
    async def login(self, info: ContextInfo, input: LoginInput) -> AuthPayload:
        signed_in = await auth.login(info.context, username=input.username, password=input.password)
        return AuthPayload.of(signed_in)

    @strawberry.mutation
    async def login_with_oidc(self, info: ContextInfo, input: OidcLoginInput) -> AuthPayload:
        signed_in = await auth.login_with_oidc(
            info.context, provider=input.provider, id_token=input.id_token
        )
        return AuthPayload.of(signed_in)

    @strawberry.mutation
    async def refresh_session(self, info: ContextInfo, refresh_token: str) -> AuthPayload:
        return AuthPayload.of(await auth.refresh(info.context, refresh_token=refresh_token))

    @strawberry.mutation
    async def logout(self, info: ContextInfo, refresh_token: str) -> bool:
        return await auth.logout(info.context, refresh_token=refresh_token)

    @strawberry.mutation
    async def update_profile(self, info: ContextInfo, input: UpdateProfileInput) -> User:
        changes = given(input, "display_name", "avatar_url")
        return User.from_row(await users.update_profile(info.context, changes=changes))

    @strawberry.mutation
    async def create_group(self, info: ContextInfo, input: CreateGroupInput) -> Group:
        row = await groups.create_group(
            info.context,
            title=input.title,
            description=input.description,
            is_public=bool(input.is_public),
            member_ids=_user_ids(input.member_ids or [], field="memberIds"),
        )
        return group_from_row(row)

    @strawberry.mutation
    async def update_group(self, info: ContextInfo, input: UpdateGroupInput) -> Group:
        row = await groups.update_group(
            info.context,
            group_id=decode_id_of(input.group_id, "Group"),
            changes=given(input, "title", "description", "avatar_url", "is_public"),
        )
        return group_from_row(row)

    @strawberry.mutation
    async def join_group(self, info: ContextInfo, group_id: strawberry.ID) -> Group:
        row = await members.join_group(info.context, group_id=decode_id_of(group_id, "Group"))
        return group_from_row(row)

    @strawberry.mutation(
        description="Returns the existing direct conversation with that user, or creates it."
    )
    async def open_direct_conversation(
        self, info: ContextInfo, user_id: strawberry.ID
    ) -> DirectConversation:
        row = await direct.open_direct(info.context, user_id=decode_id_of(user_id, "User"))
        return direct_from_row(row)

    @strawberry.mutation
    async def add_members(
        self, info: ContextInfo, conversation_id: strawberry.ID, user_ids: list[strawberry.ID]
    ) -> Group:
        key, kind = decode_conversation_id(conversation_id)
        row = await members.add_members(
            info.context,
            conversation_id=key,
            kind=kind,
            user_ids=_user_ids(user_ids, field="userIds"),
        )
        return group_from_row(row)

    @strawberry.mutation
    async def remove_member(
        self, info: ContextInfo, conversation_id: strawberry.ID, user_id: strawberry.ID
    ) -> Group:
        key, kind = decode_conversation_id(conversation_id)
        row = await members.remove_member(
            info.context,
            conversation_id=key,
            kind=kind,
            user_id=decode_id_of(user_id, "User"),
        )
        return group_from_row(row)

    @strawberry.mutation
    async def set_member_role(
        self,
        info: ContextInfo,
        conversation_id: strawberry.ID,
        user_id: strawberry.ID,
        role: Role,
    ) -> Member:
        key, kind = decode_conversation_id(conversation_id)
        row = await members.set_member_role(
            info.context,
            conversation_id=key,
            kind=kind,
            user_id=decode_id_of(user_id, "User"),
            role=role,
        )
        return Member.from_row(row)

    @strawberry.mutation
    async def leave_conversation(self, info: ContextInfo, conversation_id: strawberry.ID) -> bool:
        key, kind = decode_conversation_id(conversation_id)
        return await members.leave(info.context, conversation_id=key, kind=kind)

    @strawberry.mutation
    async def send_message(self, info: ContextInfo, input: SendMessageInput) -> Message:
        key, kind = decode_conversation_id(input.conversation_id)
        row = await messages.send(
            info.context,
            conversation_id=key,
            kind=kind,
            body=input.body,
            client_message_id=input.client_message_id,
            reply_to_id=(
                decode_id_of(input.reply_to_id, "Message")
                if input.reply_to_id is not None
                else None
            ),
        )
        return Message.from_row(row)

    @strawberry.mutation
    async def edit_message(
        self, info: ContextInfo, message_id: strawberry.ID, body: str
    ) -> Message:
        row = await messages.edit(
            info.context, message_id=decode_id_of(message_id, "Message"), body=body
        )
        return Message.from_row(row)

    @strawberry.mutation
    async def delete_message(self, info: ContextInfo, message_id: strawberry.ID) -> Message:
        row = await messages.delete(info.context, message_id=decode_id_of(message_id, "Message"))
        return Message.from_row(row)

    @strawberry.mutation
    async def add_reaction(
        self, info: ContextInfo, message_id: strawberry.ID, emoji: str
    ) -> Message:
        row = await messages.react(
            info.context, message_id=decode_id_of(message_id, "Message"), emoji=emoji, add=True
        )
        return Message.from_row(row)

    @strawberry.mutation
    async def remove_reaction(
        self, info: ContextInfo, message_id: strawberry.ID, emoji: str
    ) -> Message:
        row = await messages.react(
            info.context, message_id=decode_id_of(message_id, "Message"), emoji=emoji, add=False
        )
        return Message.from_row(row)

    @strawberry.mutation(description="Moves the viewer's read marker forward (never back).")
    async def mark_read(
        self, info: ContextInfo, conversation_id: strawberry.ID, seq: int
    ) -> Conversation:
        key, kind = decode_conversation_id(conversation_id)
        access = await messages.mark_read(info.context, conversation_id=key, kind=kind, seq=seq)
        return conversation_from_row(access.conversation)

    @strawberry.mutation
    async def set_typing(
        self, info: ContextInfo, conversation_id: strawberry.ID, typing: bool
    ) -> bool:
        key, kind = decode_conversation_id(conversation_id)
        return await signals.set_typing(info.context, conversation_id=key, kind=kind, typing=typing)

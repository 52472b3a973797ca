"""The Subscription root: thin fields that convert what ``resolvers.live`` streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from db.models import EventKind
from resolvers.live import sharing, signals
from resolvers.live import subscriptions as live
from resolvers.live.snapshots import SharedEvent
from schema.errors import NotFound
from schema.events import (
    ConversationEvent,
    ConversationJoined,
    ConversationLeft,
    ConversationUpdated,
    MembersChanged,
    MessageAdded,
    MessageDeleted,
    MessageEdited,
    PresenceEvent,
    ReactionsChanged,
    ReadMarkerMoved,
    ReadReceipt,
    TypingEvent,
    ViewerEvent,
)
from schema.ids import decode_conversation_id, decode_id_of
from schema.types import ContextInfo, Message, User, conversation_from_row

_MESSAGE_EVENTS: dict[
    EventKind, type[MessageAdded | MessageEdited | MessageDeleted | ReactionsChanged]
] = {
    EventKind.MESSAGE_ADDED: MessageAdded,
    EventKind.MESSAGE_EDITED: MessageEdited,
    EventKind.MESSAGE_DELETED: MessageDeleted,
    EventKind.REACTIONS_CHANGED: ReactionsChanged,
}


def timeline_event(event: SharedEvent) -> ConversationEvent:
    conversation = conversation_from_row(event.conversation)
    seq, at = event.seq, event.at
    message_type = _MESSAGE_EVENTS.get(event.kind)
    if message_type is not None:
        message = event.message
        if message is None:  # message events cascade with their messages
            raise NotFound.of_message()
        return message_type(
            seq=seq, conversation_id=conversation.id, at=at, message=Message.from_row(message)
        )
    if event.kind == EventKind.MEMBERS_CHANGED:
        actor = event.users.get(event.actor_id) if event.actor_id is not None else None

        def people(key: str) -> list[User]:
            return [User.from_row(event.users[i]) for i in event.user_ids(key) if i in event.users]

        return MembersChanged(
            seq=seq,
            conversation_id=conversation.id,
            at=at,
            actor=User.from_row(actor) if actor is not None else None,
            added=people("added"),
            removed=people("removed"),
        )
    return ConversationUpdated(
        seq=seq, conversation_id=conversation.id, at=at, conversation=conversation
    )


def viewer_event(item: live.ViewerItem) -> ViewerEvent | None:
    if isinstance(item, SharedEvent):
        event = timeline_event(item)
        # New messages are the only timeline events viewers get.
        return event if isinstance(event, MessageAdded) else None
    if isinstance(item, live.Joined):
        conversation = conversation_from_row(item.conversation)
        return ConversationJoined(
            conversation_id=conversation.id, at=item.at, conversation=conversation
        )
    if isinstance(item, live.Left):
        return ConversationLeft(
            conversation_id=conversation_from_row(item.conversation).id, at=item.at
        )
    return ReadMarkerMoved(
        conversation_id=conversation_from_row(item.conversation).id,
        at=item.at,
        last_read_seq=item.membership.last_read_seq,
        unread_count=item.unread_count,
    )


@strawberry.type(name="Subscription")
class Subscription:
    @strawberry.subscription(
        description="A conversation's timeline events in seq order. With afterSeq the stream "
        "first replays every stored event after it, then goes live: no gap and no duplicate, "
        "even across reconnects and server nodes. Ends with FORBIDDEN when the viewer stops "
        "being a member."
    )
    async def conversation_events(
        self, info: ContextInfo, conversation_id: strawberry.ID, after_seq: int | None = None
    ) -> AsyncGenerator[ConversationEvent, None]:
        key, kind = decode_conversation_id(conversation_id)
        events = live.conversation_events(
            info.context, conversation_id=key, kind=kind, after_seq=after_seq
        )
        async for event in sharing.deliver(info, events, timeline_event):
            yield event

    @strawberry.subscription(
        description="Events of all the viewer's conversations: new messages, joins, leaves, "
        "read markers."
    )
    async def viewer_events(self, info: ContextInfo) -> AsyncGenerator[ViewerEvent, None]:
        items = live.viewer_events(info.context)
        async for event in sharing.deliver(info, items, viewer_event):
            yield event

    @strawberry.subscription
    async def typing(
        self, info: ContextInfo, conversation_id: strawberry.ID
    ) -> AsyncGenerator[TypingEvent, None]:
        key, kind = decode_conversation_id(conversation_id)
        async for item in signals.typing(info.context, conversation_id=key, kind=kind):
            yield TypingEvent(
                conversation_id=conversation_from_row(item.conversation).id,
                user=User.from_row(item.user),
                typing=item.typing,
            )

    @strawberry.subscription
    async def presence(
        self, info: ContextInfo, user_ids: list[strawberry.ID]
    ) -> AsyncGenerator[PresenceEvent, None]:
        keys = [decode_id_of(i, "User") for i in user_ids]
        async for item in signals.presence(info.context, user_ids=keys):
            yield PresenceEvent(
                user=User.from_row(item.user),
                online=item.online,
                last_seen_at=item.user.last_seen_at,
            )

    @strawberry.subscription
    async def read_receipts(
        self, info: ContextInfo, conversation_id: strawberry.ID
    ) -> AsyncGenerator[ReadReceipt, None]:
        key, kind = decode_conversation_id(conversation_id)
        async for item in signals.read_receipts(info.context, conversation_id=key, kind=kind):
            yield ReadReceipt(
                conversation_id=conversation_from_row(item.conversation).id,
                user=User.from_row(item.user),
                last_read_seq=item.last_read_seq,
                at=item.at,
            )

"""Subscription payload types: timeline events, viewer events and live signals."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.types import Conversation, Message, User


@strawberry.interface(
    name="ConversationEvent",
    description="A change to a conversation's timeline. Every one has its own seq.",
)
class ConversationEvent:
    seq: int
    conversation_id: strawberry.ID
    at: datetime


@strawberry.interface(
    name="ViewerEvent",
    description="Something that concerns the viewer, in any of its conversations.",
)
class ViewerEvent:
    conversation_id: strawberry.ID
    at: datetime


@strawberry.type(name="MessageAdded")
class MessageAdded(ConversationEvent, ViewerEvent):
    message: Message


@strawberry.type(name="MessageEdited")
class MessageEdited(ConversationEvent):
    message: Message


@strawberry.type(name="MessageDeleted")
class MessageDeleted(ConversationEvent):
    message: Message


@strawberry.type(name="ReactionsChanged")
class ReactionsChanged(ConversationEvent):
    message: Message


@strawberry.type(name="MembersChanged")
class MembersChanged(ConversationEvent):
    actor: User | None
    added: list[User]
    removed: list[User]


@strawberry.type(name="ConversationUpdated")
class ConversationUpdated(ConversationEvent):
    conversation: Conversation


@strawberry.type(
    name="ConversationJoined",
    description="The viewer was added to a conversation (or created one).",
)
class ConversationJoined(ViewerEvent):
    conversation: Conversation


@strawberry.type(
    name="ConversationLeft", description="The viewer left or was removed from a conversation."
)
class ConversationLeft(ViewerEvent):
    pass


@strawberry.type(
    name="ReadMarkerMoved",
    description="The viewer's read marker moved (on this or another device).",
)
class ReadMarkerMoved(ViewerEvent):
    last_read_seq: int
    unread_count: int


@strawberry.type(name="TypingEvent")
class TypingEvent:
    conversation_id: strawberry.ID
    user: User
    typing: bool = strawberry.field(
        description="False when the user stopped, or after a few seconds without a refresh."
    )


@strawberry.type(name="PresenceEvent")
class PresenceEvent:
    user: User
    online: bool
    last_seen_at: datetime | None


@strawberry.type(name="ReadReceipt")
class ReadReceipt:
    conversation_id: strawberry.ID
    user: User
    last_read_seq: int
    at: datetime


EVENT_TYPES = [
    MessageAdded,
    MessageEdited,
    MessageDeleted,
    ReactionsChanged,
    MembersChanged,
    ConversationUpdated,
    ConversationJoined,
    ConversationLeft,
    ReadMarkerMoved,
]

"""The Subscription root."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from schema.errors import ParleyError
from schema.events import (
    ConversationEvent,
    PresenceEvent,
    ReadReceipt,
    TypingEvent,
    ViewerEvent,
)
from schema.types import ContextInfo


class NotLiveYet(ParleyError):
    code = "INTERNAL_SERVER_ERROR"


def _not_live() -> NotLiveYet:
    return NotLiveYet("Subscriptions are not served by this build yet.")


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
        raise _not_live()
        yield  # pragma: no cover

    @strawberry.subscription(
        description="Events of all the viewer's conversations: new messages, joins, leaves, "
        "read markers."
    )
    async def viewer_events(self, info: ContextInfo) -> AsyncGenerator[ViewerEvent, None]:
        raise _not_live()
        yield  # pragma: no cover

    @strawberry.subscription
    async def typing(
        self, info: ContextInfo, conversation_id: strawberry.ID
    ) -> AsyncGenerator[TypingEvent, None]:
        raise _not_live()
        yield  # pragma: no cover

    @strawberry.subscription
    async def presence(
        self, info: ContextInfo, user_ids: list[strawberry.ID]
    ) -> AsyncGenerator[PresenceEvent, None]:
        raise _not_live()
        yield  # pragma: no cover

    @strawberry.subscription
    async def read_receipts(
        self, info: ContextInfo, conversation_id: strawberry.ID
    ) -> AsyncGenerator[ReadReceipt, None]:
        raise _not_live()
        yield  # pragma: no cover

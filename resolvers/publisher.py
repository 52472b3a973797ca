"""Says "something happened" after a commit; subscribers recover the rest from the database."""

from __future__ import annotations

import json
import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class BroadcastLike(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


def conversation_channel(conversation_id: int) -> str:
    return f"parley.conversation.{conversation_id}"


def user_channel(user_id: int) -> str:
    return f"parley.user.{user_id}"


class Publisher:
    """Publishes small envelopes (ids and seqs), never payloads, and only after commit."""

    def __init__(self, broadcast: BroadcastLike) -> None:
        self._broadcast = broadcast

    async def conversation_event(self, *, conversation_id: int, seq: int, kind: str) -> None:
        await self._publish(
            conversation_channel(conversation_id),
            {"conversation_id": conversation_id, "seq": seq, "kind": kind},
        )

    async def user_event(self, *, user_id: int, kind: str, conversation_id: int) -> None:
        await self._publish(
            user_channel(user_id), {"kind": kind, "conversation_id": conversation_id}
        )

    async def ephemeral(self, channel: str, message: str) -> None:
        """Signals nobody replays (typing): lost if nobody listens, by design."""
        try:
            await self._broadcast.publish(channel, message)
        except Exception:
            logger.exception("publish to %s failed", channel)

    async def _publish(self, channel: str, envelope: dict[str, object]) -> None:
        # The commit already happened: the database holds the event, and a
        # subscriber that misses this envelope recovers it from there. A
        # broker failure must not turn an acknowledged write into an error.
        try:
            await self._broadcast.publish(channel, json.dumps(envelope))
        except Exception:
            logger.exception("publish to %s failed; subscribers will catch up", channel)

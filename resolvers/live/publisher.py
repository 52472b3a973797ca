"""Says "something happened" after a commit; listeners recover the rest from the database.

Envelopes carry ids and seqs only, never payloads: they stay far below any
broker's message limit (PostgreSQL NOTIFY's 8000 bytes included), and a
listener always reads what it shows from the source of truth.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Protocol

logger = logging.getLogger(__name__)


class BrokerLike(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


def conversation_channel(conversation_id: int) -> str:
    return f"parley.conversation.{conversation_id}"


def user_channel(user_id: int) -> str:
    return f"parley.user.{user_id}"


def typing_channel(conversation_id: int) -> str:
    return f"parley.typing.{conversation_id}"


def receipts_channel(conversation_id: int) -> str:
    return f"parley.receipts.{conversation_id}"


def presence_channel(user_id: int) -> str:
    return f"parley.presence.{user_id}"


class Publisher:
    def __init__(self, broker: BrokerLike) -> None:
        self._broker = broker

    async def conversation_event(self, *, conversation_id: int, seq: int, kind: str) -> None:
        await self._publish(conversation_channel(conversation_id), {"seq": seq, "kind": kind})

    async def user_event(self, *, user_id: int, kind: str, conversation_id: int) -> None:
        await self._publish(
            user_channel(user_id), {"kind": kind, "conversation_id": conversation_id}
        )

    async def typing(self, *, conversation_id: int, user_id: int, typing: bool) -> None:
        await self._publish(typing_channel(conversation_id), {"user_id": user_id, "typing": typing})

    async def read_receipt(
        self, *, conversation_id: int, user_id: int, last_read_seq: int, at: datetime
    ) -> None:
        await self._publish(
            receipts_channel(conversation_id),
            {"user_id": user_id, "last_read_seq": last_read_seq, "at": at.isoformat()},
        )

    async def presence(self, *, user_id: int, online: bool) -> None:
        await self._publish(presence_channel(user_id), {"online": online})

    async def _publish(self, channel: str, envelope: dict[str, object]) -> None:
        # Called after the commit: the database already holds the change, and
        # a listener that misses this envelope catches up from there. A
        # broker failure must not turn an acknowledged write into an error.
        try:
            await self._broker.publish(channel, json.dumps(envelope))
        except Exception:
            logger.exception("publish to %s failed; listeners will catch up", channel)

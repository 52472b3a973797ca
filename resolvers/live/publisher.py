"""The broker's wire format: channels, envelopes, and the one publisher that sends them.

An envelope says "something happened" after a commit; listeners recover the
rest from the database. Envelopes carry ids and seqs only, never payloads:
they stay far below any broker's message limit (PostgreSQL NOTIFY's 8000
bytes included), and a listener always reads what it shows from the source
of truth. Building and reading an envelope both live here, so the two sides
cannot drift apart.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class BrokerLike(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


class Notice(enum.StrEnum):
    """What an envelope on a user's own channel tells that user."""

    CONVERSATION_JOINED = "CONVERSATION_JOINED"
    CONVERSATION_LEFT = "CONVERSATION_LEFT"
    READ_MARKER_MOVED = "READ_MARKER_MOVED"


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


@dataclass(frozen=True, slots=True)
class Envelope:
    channel: str
    body: dict[str, Any]


# ------------------------------------------------------------------ building


def timeline_advanced(*, conversation_id: int, seq: int, kind: str) -> Envelope:
    return Envelope(conversation_channel(conversation_id), {"seq": seq, "kind": kind})


def user_notice(*, user_id: int, notice: Notice, conversation_id: int) -> Envelope:
    return Envelope(user_channel(user_id), {"kind": notice, "conversation_id": conversation_id})


def typing_signal(*, conversation_id: int, user_id: int, typing: bool) -> Envelope:
    return Envelope(typing_channel(conversation_id), {"user_id": user_id, "typing": typing})


def read_receipt(
    *, conversation_id: int, user_id: int, last_read_seq: int, at: datetime
) -> Envelope:
    return Envelope(
        receipts_channel(conversation_id),
        {"user_id": user_id, "last_read_seq": last_read_seq, "at": at.isoformat()},
    )


def presence_changed(*, user_id: int, online: bool) -> Envelope:
    return Envelope(presence_channel(user_id), {"online": online})


# ------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class UserNotice:
    notice: Notice
    conversation_id: int


@dataclass(frozen=True, slots=True)
class TypingSignal:
    user_id: int
    typing: bool


@dataclass(frozen=True, slots=True)
class ReadReceiptSignal:
    user_id: int
    last_read_seq: int
    at: datetime


def _body(message: str) -> dict[str, Any] | None:
    try:
        body = json.loads(message)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def read_timeline_seq(message: str) -> int | None:
    """The seq a timeline envelope announces; None for anything malformed."""
    try:
        return int((_body(message) or {})["seq"])
    except (KeyError, ValueError, TypeError):
        return None


def read_user_notice(message: str) -> UserNotice | None:
    try:
        body = _body(message) or {}
        return UserNotice(Notice(body["kind"]), int(body["conversation_id"]))
    except (KeyError, ValueError, TypeError):
        return None


def read_typing(message: str) -> TypingSignal | None:
    try:
        body = _body(message) or {}
        return TypingSignal(int(body["user_id"]), bool(body["typing"]))
    except (KeyError, ValueError, TypeError):
        return None


def read_receipt_signal(message: str) -> ReadReceiptSignal | None:
    try:
        body = _body(message) or {}
        return ReadReceiptSignal(
            int(body["user_id"]), int(body["last_read_seq"]), datetime.fromisoformat(body["at"])
        )
    except (KeyError, ValueError, TypeError):
        return None


class Publisher:
    def __init__(self, broker: BrokerLike) -> None:
        self._broker = broker

    async def publish(self, *envelopes: Envelope) -> None:
        # Called after the commit: the database already holds the change, and
        # a listener that misses an envelope catches up from there. A broker
        # failure must not turn an acknowledged write into an error.
        for envelope in envelopes:
            try:
                await self._broker.publish(envelope.channel, json.dumps(envelope.body))
            except Exception:
                logger.exception("publish to %s failed; listeners will catch up", envelope.channel)

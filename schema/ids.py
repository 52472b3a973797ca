"""Opaque Relay global ids ("Type:key", base64url) and cursors.

Every id the API returns is the canonical one of its object; an id that
names another type than the one asked for answers like an id nobody has.
Every cursor names the connection that issued it, and is refused elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from db.models import ConversationKind
from schema.errors import BadUserInput

MAX_KEY = 2**31  # keys are INTEGER columns on PostgreSQL; larger ones cannot exist

# The GraphQL type of each kind of conversation, and back.
CONVERSATION_TYPE_NAMES = {
    ConversationKind.GROUP: "Group",
    ConversationKind.DIRECT: "DirectConversation",
}
_CONVERSATION_KINDS = {name: kind for kind, name in CONVERSATION_TYPE_NAMES.items()}
NO_KEY = 0  # no row has it (keys start at 1)


def encode_global_id(type_name: str, key: int) -> str:
    return _b64(f"{type_name}:{key}")


def conversation_global_id(kind: str, key: int) -> str:
    return encode_global_id(CONVERSATION_TYPE_NAMES[ConversationKind(kind)], key)


def decode_global_id(global_id: str) -> tuple[str, int]:
    """The (type name, database key) of a global id; BAD_USER_INPUT when it is not one.

    Only the canonical spelling is an id: padding, leading zeros or other
    digits would give one object many ids, and ``node(id).id != id``.
    """
    try:
        type_name, _, key = _unb64(global_id).partition(":")
        if not type_name or not key.isdigit() or int(key) >= MAX_KEY:
            raise ValueError(global_id)
        if encode_global_id(type_name, int(key)) != global_id:
            raise ValueError(global_id)
        return type_name, int(key)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadUserInput(f"{global_id!r} is not a valid ID.") from None


def decode_id_of(global_id: str, type_name: str) -> int:
    """The database key of a global id of ``type_name``.

    A well-formed id of another type decodes to ``NO_KEY``, which no row has:
    every resolver then answers exactly as for an unknown id of the right type.
    """
    found, key = decode_global_id(global_id)
    return key if found == type_name else NO_KEY


def decode_conversation_id(global_id: str) -> tuple[int, ConversationKind | None]:
    """The key of a Group or DirectConversation id, and the kind the id claims.

    Resolvers check the claim against the row: a DirectConversation id of a
    group is NOT_FOUND, exactly as an unknown id. An id of another type is
    (``NO_KEY``, None): nothing has it.
    """
    type_name, key = decode_global_id(global_id)
    kind = _CONVERSATION_KINDS.get(type_name)
    return (key, kind) if kind is not None else (NO_KEY, None)


# json.dumps makes a new encoder at every call that passes it options; a page
# of 50 messages makes 50 cursors.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def encode_cursor(connection: str, *parts: Any) -> str:
    """A cursor of one connection ("messages:12"), positioned at ``parts``."""
    return _b64(_COMPACT_JSON.encode([connection, *parts]))


def decode_cursor(cursor: str, connection: str, *kinds: type) -> tuple[Any, ...]:
    """The parts of a cursor, each checked to be of its kind (int, str or aware datetime).

    Cursors are opaque to clients, but a client can still send anything:
    whatever does not decode to the expected parts, or was issued by another
    connection, is BAD_USER_INPUT.
    """
    try:
        parts = json.loads(_unb64(cursor))
        if not isinstance(parts, list) or len(parts) != len(kinds) + 1:
            raise ValueError(cursor)
        issued_by, *position = parts
        decoded = tuple(_part(part, kind) for part, kind in zip(position, kinds, strict=True))
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise BadUserInput(f"{cursor!r} is not a valid cursor.") from None
    if issued_by != connection:
        raise BadUserInput(
            f"{cursor!r} is a cursor of another list: page with the cursors this list gave."
        )
    return decoded


def _part(value: object, kind: type) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_KEY:
            raise ValueError(value)
        return value
    if kind is str:
        if not isinstance(value, str) or len(value) > 200 or "\x00" in value:
            raise ValueError(value)
        return value
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError(value)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(value)
        # In UTC, as stored: a time at the edge of the calendar that cannot be
        # moved there (9999-12-31T23:59-12:00) is no time a cursor was made of.
        return moment.astimezone(UTC)
    raise TypeError(kind)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii")).decode()

"""Opaque Relay global ids ("Type:key", base64url) and cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from schema.errors import BadUserInput, NotFound

MAX_KEY = 2**31  # keys are INTEGER columns on PostgreSQL; larger ones cannot exist


def encode_global_id(type_name: str, key: int) -> str:
    return _b64(f"{type_name}:{key}")


def decode_global_id(global_id: str) -> tuple[str, int]:
    """The (type name, database key) of a global id; BAD_USER_INPUT when it is not one."""
    try:
        type_name, _, key = _unb64(global_id).partition(":")
        if not type_name or not key.isdigit() or int(key) >= MAX_KEY:
            raise ValueError(global_id)
        return type_name, int(key)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadUserInput(f"{global_id!r} is not a valid ID.") from None


def decode_id_of(global_id: str, *type_names: str, field: str | None = None) -> int:
    """The database key of a global id that must name one of ``type_names``.

    An id of the wrong kind is NOT_FOUND: no object of the asked kind has it.
    """
    type_name, key = decode_global_id(global_id)
    if type_name not in type_names:
        what = " or ".join(type_names)
        raise NotFound(f"No {what} has the ID {global_id!r}.")
    return key


def encode_cursor(*parts: Any) -> str:
    return _b64(json.dumps(parts, separators=(",", ":")))


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The parts of a cursor, each checked to be of its kind (int, str or aware datetime).

    Cursors are opaque to clients, but a client can still send anything:
    whatever does not decode to the expected parts is BAD_USER_INPUT.
    """
    try:
        parts = json.loads(_unb64(cursor))
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError(cursor)
        return tuple(_part(part, kind) for part, kind in zip(parts, kinds, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise BadUserInput(f"{cursor!r} is not a valid cursor.") from None


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
        return moment
    raise TypeError(kind)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii")).decode()

"""What makes a WebSocket frame a well-formed message, for both protocols.

Strawberry's handlers index into each frame as though it were well formed; the
protocol handlers here check it first with these. Each check returns, in a few
words the client gets back (a close reason or an error message), why a frame
is malformed, or None when it is not.
"""

from __future__ import annotations

Frame = dict[str, object]


def as_message(frame: object) -> tuple[Frame, str] | str:
    """The frame and its type, or why it is no message at all."""
    if not isinstance(frame, dict):
        return "Message must be a JSON object"
    kind = frame.get("type")
    if not isinstance(kind, str) or not kind:
        return "Message needs a string 'type'"
    return frame, kind


def operation_problem(kind: str, payload: object, *, extensions: bool) -> str | None:
    """Why the payload of a subscribe (or start) message is malformed."""
    if not isinstance(payload, dict):
        return f"'{kind}' payload must be an object"
    if not isinstance(payload.get("query"), str):
        return f"'{kind}' payload.query must be a string"
    if not _object_or_null(payload.get("variables")):
        return f"'{kind}' payload.variables must be an object or null"
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        return f"'{kind}' payload.operationName must be a string or null"
    if extensions and not _object_or_null(payload.get("extensions")):
        return f"'{kind}' payload.extensions must be an object or null"
    return None


def payload_problem(kind: str, payload: object) -> str | None:
    """Why the payload of a message whose payload is optional is malformed."""
    if not _object_or_null(payload):
        return f"'{kind}' payload must be an object or null"
    return None


def _object_or_null(value: object) -> bool:
    return value is None or isinstance(value, dict)


def is_operation_id(value: object) -> bool:
    """Operation ids are non-empty strings of Unicode text (no lone surrogates)."""
    return (
        isinstance(value, str)
        and bool(value)
        and not any("\ud800" <= ch <= "\udfff" for ch in value)
    )

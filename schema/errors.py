"""Errors a client is meant to see, each with ``extensions.code`` from the contract."""

from __future__ import annotations

import json
from typing import Any

from graphql import GraphQLError


class ParleyError(GraphQLError):
    """A domain failure: shown to the client as is, never masked."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class Unauthenticated(ParleyError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in first: send a valid access token.") -> None:
        super().__init__(message)


class Forbidden(ParleyError):
    code = "FORBIDDEN"


class NotFound(ParleyError):
    code = "NOT_FOUND"

    # One message per kind of thing: whether it does not exist, is not
    # visible to the viewer, or the id names another kind, the answer is
    # the same, so it tells nothing.
    @classmethod
    def of_conversation(cls) -> NotFound:
        return cls("No conversation with that ID is visible to you.")

    @classmethod
    def of_message(cls) -> NotFound:
        return cls("No message with that ID is visible to you.")

    @classmethod
    def of_user(cls) -> NotFound:
        return cls("No user has that ID.")


class BadUserInput(ParleyError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        if field is None:
            super().__init__(message)
        else:
            super().__init__(message, field=field)


class Conflict(ParleyError):
    code = "CONFLICT"


class RateLimited(ParleyError):
    code = "RATE_LIMITED"


def shown(text: str, limit: int = 64) -> str:
    """Text fit to quote in a message: surrogates escaped, at most ``limit`` characters."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def no_such_operation(operation_name: object) -> GraphQLError:
    """The error for an operationName that names no operation of the document.

    Coded like a document of several operations without a name (see
    OperationNameRequired): in both the client failed to pick one. The name
    is quoted as JSON, so a lone surrogate shows as an escape, never as is.
    """
    if operation_name is None:
        message = "The document has no operation to run."
    else:
        name = shown(json.dumps(operation_name), limit=80)
        message = f"The document has no operation named {name}."
    return GraphQLError(message, extensions={"code": "GRAPHQL_VALIDATION_FAILED"})

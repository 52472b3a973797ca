"""Errors a client is meant to see, each with ``extensions.code`` from the contract."""

from __future__ import annotations

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

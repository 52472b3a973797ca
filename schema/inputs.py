"""Input objects of the mutations."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import UNSET


@strawberry.input(name="RegisterInput")
class RegisterInput:
    username: str
    password: str
    display_name: str | None = None


@strawberry.input(name="LoginInput")
class LoginInput:
    username: str
    password: str


@strawberry.input(
    name="OidcLoginInput",
    description="Sign in with an ID token from a configured OpenID Connect provider.",
)
class OidcLoginInput:
    provider: str
    id_token: str


@strawberry.input(name="UpdateProfileInput")
class UpdateProfileInput:
    display_name: str | None = UNSET
    avatar_url: str | None = UNSET


@strawberry.input(name="CreateGroupInput")
class CreateGroupInput:
    title: str
    description: str | None = None
    is_public: bool | None = False
    member_ids: list[strawberry.ID] | None = strawberry.field(default_factory=list)


@strawberry.input(name="UpdateGroupInput")
class UpdateGroupInput:
    group_id: strawberry.ID
    title: str | None = UNSET
    description: str | None = UNSET
    avatar_url: str | None = UNSET
    is_public: bool | None = UNSET


@strawberry.input(name="SendMessageInput")
class SendMessageInput:
    conversation_id: strawberry.ID
    body: str
    client_message_id: str | None = strawberry.field(
        default=None, description="Idempotency key chosen by the client (e.g. a UUID)."
    )
    reply_to_id: strawberry.ID | None = None


def given(input_object: object, *names: str) -> dict[str, Any]:
    """The fields the client actually sent (an explicit null included), by Python name."""
    return {
        name: getattr(input_object, name)
        for name in names
        if getattr(input_object, name) is not UNSET
    }

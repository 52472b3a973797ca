"""A small GraphQL-over-HTTP client for the tests, and sign-up helpers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx


class GraphQLErrors(Exception):
    def __init__(self, errors: list[dict[str, Any]], data: Any) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors
        self.data = data

    @property
    def code(self) -> str:
        return str(self.errors[0].get("extensions", {}).get("code"))


class Client:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

    def as_user(self, token: str | None) -> Client:
        other = Client(self.base_url, token)
        other.http = self.http
        return other

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = response.json()
        return body

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, /, **kw: Any
    ) -> Any:
        """The data of a successful operation; GraphQLErrors otherwise."""
        body = await self.raw(query, {**(variables or {}), **kw})
        if body.get("errors"):
            raise GraphQLErrors(body["errors"], body.get("data"))
        return body["data"]

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, /, **kw: Any
    ) -> GraphQLErrors:
        """The errors of an operation that must fail."""
        try:
            data = await self(query, variables, **kw)
        except GraphQLErrors as errors:
            return errors
        raise AssertionError(f"expected an error, got {data!r}")


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) {
    accessToken refreshToken accessTokenExpiresAt
    user { id username displayName }
  }
}
"""


@dataclass
class User:
    id: str
    username: str
    password: str
    token: str
    refresh_token: str
    client: Client


NewUser = Callable[..., Awaitable["User"]]


async def sign_up(client: Client, *, display_name: str | None = None) -> User:
    username, password = unique(), "correct horse battery"
    data = await client.as_user(None)(
        REGISTER,
        input={"username": username, "password": password, "displayName": display_name},
    )
    payload = data["register"]
    return User(
        id=payload["user"]["id"],
        username=username,
        password=password,
        token=payload["accessToken"],
        refresh_token=payload["refreshToken"],
        client=client.as_user(payload["accessToken"]),
    )

"""Hostile input over real HTTP: every answer is a coded GraphQL error, never a masked 500.

JSON can carry what no Unicode text holds: ``"\\ud800"`` decodes to a lone
surrogate. The bodies here are built by hand (``json.dumps`` keeps such
escapes as they are), since httpx's ``json=`` would refuse to encode them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.client import User

LONE = "\ud800"

REGISTER = """
mutation($u: String!, $p: String!) {
  register(input: {username: $u, password: $p}) { accessToken }
}
"""
LOGIN = """
mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { accessToken }
}
"""
REFRESH = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }"
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
USERS = "query($s: String) { users(search: $s) { edges { cursor } } }"
SEARCH = "query($q: String!) { searchMessages(query: $q) { edges { cursor } } }"
REGISTER_INPUT = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"
PROFILE = "mutation($a: String) { updateProfile(input: {avatarUrl: $a}) { avatarUrl } }"
GROUP = "mutation($t: String!) { createGroup(input: {title: $t}) { id } }"
GROUP_AVATAR = """
mutation($g: ID!, $a: String) { updateGroup(input: {groupId: $g, avatarUrl: $a}) { avatarUrl } }
"""
VIEWER_EVENTS = "subscription { viewerEvents { __typename } }"
TYPENAME = "query A { __typename }"


def as_json(body: object) -> bytes:
    """The body as JSON text, lone surrogates written as \\u escapes."""
    return json.dumps(body).encode("ascii")


async def post(http: httpx.AsyncClient, content: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post("/graphql", content=content, headers=headers)


def first_error(response: httpx.Response) -> dict[str, Any]:
    """The first error of a JSON answer in GraphQL's shape."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    error: dict[str, Any] = body["errors"][0]
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize("avatar", ["http://[::1/a.png", "http://[zz]/", "http://a]b/"])
async def test_avatar_urls_with_broken_ip_hosts_are_bad_user_input(
    new_user: Any, avatar: str
) -> None:
    # given a user with a group
    ann: User = await new_user()
    group = (await ann.client(GROUP, t="avatars"))["createGroup"]["id"]
    # when either avatar is set to a URL whose bracketed host is no IP address
    profile = await ann.client.error(PROFILE, a=avatar)
    group_error = await ann.client.error(GROUP_AVATAR, g=group, a=avatar)
    # then both are refused, naming the field
    for error in (profile, group_error):
        assert error.code == "BAD_USER_INPUT"
        assert error.errors[0]["extensions"]["field"] == "avatarUrl"

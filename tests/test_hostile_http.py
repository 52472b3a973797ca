"""Hostile input over real HTTP: every answer is a coded GraphQL error, never a masked 500.

JSON can carry what no Unicode text holds: ``"\\ud800"`` decodes to a lone
surrogate. The bodies here are built by hand (``json.dumps`` keeps such
escapes as they are), since httpx's ``json=`` would refuse to encode them.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from tests.client import Client, User
from tests.ws import open_socket

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
GROUP_WITH = """
mutation($t: String!, $m: [ID!]) { createGroup(input: {title: $t, memberIds: $m}) { id } }
"""
SEND = 'mutation($c: ID!) { sendMessage(input: {conversationId: $c, body: "hi"}) { id } }'
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


@pytest.mark.parametrize(
    "avatar",
    [
        "http://[::1/a.png",
        "http://[zz]/",
        "http://a]b/",
        # what browsers' URL parsers refuse, so a client rendering it would fail
        "https://example.com:65536/a",
        "https://example.com:-1/a",
        "https://example.com:\u0668\u0660/a",  # Arabic-Indic digits
        "https://[::1]x/",
        "https://[v1.x]/a",
        "https://[fe80::1%25eth0]/a",
        "https://:80/",
        "https://user:secret@example.com/a.png",
        # hosts a browser refuses: a number that is no IPv4 address, forbidden
        # characters, broken punycode, a label that starts with a combining mark
        "https://999.1.1.1/",
        "https://1.2.3.08/",
        "https://example.1/",
        "https://a^b.com/",
        "https://a%2Fb.com/",
        "https://xn--a.com/",
        "https://\u0300a.com/",
    ],
)
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


@pytest.mark.parametrize(
    ("query", "variables", "needs_token"),
    [
        (REGISTER, {"u": "surrogate1", "p": f"long enough {LONE}"}, False),
        (LOGIN, {"u": "someone", "p": f"long enough {LONE}"}, False),
        (LOGIN, {"u": f"some{LONE}one", "p": "long enough"}, False),
        (REFRESH, {"t": LONE}, False),
        (LOGOUT, {"t": f"token{LONE}"}, False),
        (USERS, {"s": LONE}, True),
        (SEARCH, {"q": f"x{LONE}"}, True),
        # the key of an input object's field, too
        (REGISTER_INPUT, {"i": {"username": "abcdef", "password": "long enough", LONE: 1}}, False),
    ],
    ids=[
        "register-password",
        "login-password",
        "login-username",
        "refresh-token",
        "logout-token",
        "users-search",
        "search-messages",
        "input-key",
    ],
)
async def test_lone_surrogates_in_variables_are_bad_user_input(
    client: Client, new_user: Any, query: str, variables: dict[str, Any], needs_token: bool
) -> None:
    # given an operation whose variables hold a lone surrogate
    token = (await new_user()).token if needs_token else None
    # when it is posted
    response = await post(client.http, as_json({"query": query, "variables": variables}), token)
    # then it is refused as the client's input, saying what is wrong with it
    assert response.status_code == 200
    error = first_error(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "surrogate" in error["message"]
    assert LONE not in response.text


async def test_a_lone_surrogate_inside_an_input_names_its_field(client: Client) -> None:
    # given an input object whose password holds a lone surrogate
    variables = {"i": {"username": "surrogate2", "password": f"long enough {LONE}"}}
    # when
    response = await post(client.http, as_json({"query": REGISTER_INPUT, "variables": variables}))
    # then
    error = first_error(response)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "password"}
    assert "'i.password'" in error["message"]


async def test_lone_surrogates_in_variables_over_get_are_bad_user_input(client: Client) -> None:
    # given a query sent as a link, its variables holding a lone surrogate
    params = {"query": USERS, "variables": as_json({"s": LONE}).decode()}
    # when it is fetched
    response = await client.http.get("/graphql", params=params)
    # then
    assert response.status_code == 200
    assert first_error(response)["extensions"]["code"] == "BAD_USER_INPUT"


async def test_lone_surrogates_in_variables_over_websocket_are_bad_user_input(
    server_url: str,
) -> None:
    # given a socket (no token: signing in is allowed there)
    async with open_socket(server_url) as socket:
        # when a mutation with a lone surrogate in its variables runs over it
        operation = await socket.subscribe(LOGOUT, {"t": LONE})
        message = await socket.next(operation)
    # then
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"query": TYPENAME, "operationName": "B"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": ""}, "BAD_REQUEST"),
    ],
    ids=["unknown-operation-name", "no-query"],
)
async def test_request_errors_over_websocket_are_coded_graphql_errors(
    server_url: str, payload: dict[str, Any], code: str
) -> None:
    async with open_socket(server_url) as socket:
        # when
        socket.queues["op"] = asyncio.Queue()
        await socket.connection.send(
            json.dumps({"id": "op", "type": "subscribe", "payload": payload})
        )
        message = await socket.next("op")
    # then
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == code


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ __typename \xff }"}',  # Latin-1, not UTF-8
        b'{"query": "{ __typename }", "variables": {"a": "\xed\xa0\x80"}}',  # an encoded surrogate
        '{"query": "{ __typename }"}'.encode("utf-16"),
    ],
    ids=["latin-1", "encoded-surrogate", "utf-16"],
)
async def test_a_body_that_is_not_utf8_is_400_with_a_graphql_error(
    client: Client, body: bytes
) -> None:
    # when
    response = await post(client.http, body)
    # then
    assert response.status_code == 400
    error = first_error(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "UTF-8" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"hello",
        b"",
        b"null",
        b'"query"',
        b"42",
        b"[1]",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"query": "{ __typename }", "variables": {"n": ' + b"1" * 5000 + b"}}",
    ],
    ids=["text", "empty", "null", "string", "number", "array", "deeply-nested", "huge-integer"],
)
async def test_a_body_that_is_not_a_json_object_is_400_with_a_graphql_error(
    client: Client, body: bytes
) -> None:
    # when
    response = await post(client.http, body)
    # then
    assert response.status_code == 400
    assert first_error(response)["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "body",
    [
        {"query": TYPENAME, "operationName": 5},
        {"query": TYPENAME, "variables": [1]},
        {"query": 5},
        {"variables": {}},
    ],
    ids=[
        "operation-name-not-a-string",
        "variables-not-an-object",
        "query-not-a-string",
        "no-query",
    ],
)
async def test_malformed_requests_are_400_with_a_graphql_error(
    client: Client, body: dict[str, Any]
) -> None:
    # when
    response = await post(client.http, as_json(body))
    # then
    assert response.status_code == 400
    assert first_error(response)["extensions"]["code"] == "BAD_REQUEST"


async def test_other_refusals_of_the_transport_are_json_too(client: Client) -> None:
    # when a mutation is fetched as a link, a link's variables are not JSON,
    # and a body comes in a type GraphQL does not take
    mutation = await client.http.get(
        "/graphql", params={"query": 'mutation { logout(refreshToken: "x") }'}
    )
    variables = await client.http.get(
        "/graphql", params={"query": TYPENAME, "variables": "{not json"}
    )
    form = await client.http.post(
        "/graphql", content=b"query={__typename}", headers={"Content-Type": "text/plain"}
    )
    # then each keeps its status and answers in GraphQL's error shape
    for response in (mutation, variables, form):
        assert response.status_code == 400
        assert first_error(response)["extensions"]["code"] == "BAD_REQUEST"
    assert first_error(variables)["message"] == "A query parameter is not valid JSON."


async def test_unreadable_json_over_websocket_closes_it_as_non_json(server_url: str) -> None:
    # given a socket
    async with open_socket(server_url) as socket:
        # when a message holds a number json.loads refuses to read (over 4300 digits)
        await socket.connection.send(
            '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", '
            f'"variables": {{"n": {"1" * 5000}}}}}}}'
        )
        closed = await asyncio.wait_for(socket.closed, 10)
    # then it is refused like any message that is not JSON
    assert closed.code == 4400


async def test_subscriptions_over_http_are_400_with_a_graphql_error(
    client: Client, new_user: Any
) -> None:
    # given a signed-in user
    ann: User = await new_user()
    headers = {"Authorization": f"Bearer {ann.token}"}
    # when a subscription document is posted, or fetched as a link
    posted = await post(client.http, as_json({"query": VIEWER_EVENTS}), ann.token)
    fetched = await client.http.get("/graphql", params={"query": VIEWER_EVENTS}, headers=headers)
    # then each is refused as a request this transport cannot serve, pointing at WebSocket
    for response in (posted, fetched):
        assert response.status_code == 400
        error = first_error(response)
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert "WebSocket" in error["message"]


async def test_subscriptions_over_websocket_still_run(server_url: str, new_user: Any) -> None:
    # given Bob in a group of Ann's, listening on a socket to the same document
    ann: User = await new_user()
    bob: User = await new_user()
    group = (await ann.client(GROUP_WITH, t="still live", m=[bob.id]))["createGroup"]["id"]
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(VIEWER_EVENTS)
        # when Ann sends (again until one arrives: a subscription has no "ready" signal)
        for _ in range(30):
            await ann.client(SEND, c=group)
            try:
                event = await socket.next(operation, within=0.5)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no event arrived")
    # then events arrive as ever
    assert event["type"] == "next" and "errors" not in event["payload"], event


async def test_an_unknown_operation_name_is_a_graphql_error(client: Client) -> None:
    # when the operation named is not in the document (a lone surrogate cannot name one)
    unknown = await post(client.http, as_json({"query": TYPENAME, "operationName": "B"}))
    lone = await post(client.http, as_json({"query": TYPENAME, "operationName": LONE}))
    fetched = await client.http.get("/graphql", params={"query": TYPENAME, "operationName": "B"})
    # then it is answered like a document of several operations without a name
    for response in (unknown, lone, fetched):
        assert response.status_code == 200
        error = first_error(response)
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "no operation named" in error["message"]
    # and the name is quoted without the lone surrogate itself
    assert LONE not in lone.text
    assert "\\\\ud800" in lone.text


async def test_an_int_literal_of_thousands_of_digits_is_a_validation_error(
    client: Client,
) -> None:
    # given Int literals too long for Python's int() (over 4300 digits)
    huge = "9" * 4400
    for document in (
        "{ users(first: " + huge + ") { edges { cursor } } }",
        "query($f: Int = " + huge + ") { users(first: $f) { edges { cursor } } }",
    ):
        # when
        response = await client.http.post("/graphql", json={"query": document})
        # then the document is invalid, not the server broken
        assert first_error(response)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_forged_cursor_at_the_calendars_edge_is_bad_user_input(new_user: Any) -> None:
    # given Ann's conversation list, and cursors of it forged at times that exist
    # only in some time zone (moved to UTC they leave the calendar)
    ann = await new_user()
    viewer_key = base64.urlsafe_b64decode(ann.id + "=" * (-len(ann.id) % 4)).decode()
    key = viewer_key.split(":")[1]
    for moment in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        forged = base64.urlsafe_b64encode(
            json.dumps([f"conversations:{key}", moment, 1]).encode()
        ).decode()
        # when it is used
        error = await ann.client.error(
            "query($a: String) { conversations(after: $a) { edges { cursor } } }", a=forged
        )
        # then
        assert error.code == "BAD_USER_INPUT"

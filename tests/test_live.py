"""Subscriptions over a real WebSocket against a real server process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.typing import Subprotocol

from tests.client import NewUser, User
from tests.operations import (
    ADD_MEMBERS,
    ADD_REACTION,
    DELETE_MESSAGE,
    EDIT_MESSAGE,
    EVENTS,
    MARK_READ,
    REMOVE_MEMBER,
    SEND,
    UPDATE_GROUP,
    create_group,
    made_up_id,
    open_direct,
    send,
)
from tests.ws import Socket, open_socket

SET_TYPING = "mutation($c: ID!, $t: Boolean!) { setTyping(conversationId: $c, typing: $t) }"
VIEWER_MESSAGES = """
subscription { viewerEvents {
  __typename conversationId ... on MessageAdded { message { body } }
} }
"""


async def first_after(
    socket: Socket, operation: str, act: Callable[[], Awaitable[object]], within: float = 15
) -> dict[str, Any]:
    """Repeat ``act`` until the subscription delivers: a subscription has no "ready" signal."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        await act()
        try:
            return await socket.data(operation, 0.5)
        except TimeoutError:
            if loop.time() > deadline:
                raise


def error_code(message: dict[str, Any]) -> str:
    """The code of an operation's error: an ``error`` message, or a ``next`` with errors."""
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    return str(errors[0]["extensions"]["code"])


async def ending_code(socket: Socket, operation: str) -> str:
    """Skip the stream's events; the code of the error that ends it."""
    while True:
        message = await socket.next(operation)
        if message["type"] != "next" or "errors" in message["payload"]:
            return error_code(message)


async def collect(socket: Socket, operation: str, count: int) -> list[dict[str, Any]]:
    return [(await socket.data(operation, 20))["conversationEvents"] for _ in range(count)]


async def test_live_messages_reach_a_member(server_url: str, new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    group, last_seq = await create_group(ann, bob)
    async with open_socket(server_url, bob.token) as socket:
        # afterSeq makes the stream start where the client stands, however
        # long the server takes to set the subscription up
        operation = await socket.subscribe(EVENTS, {"id": group, "after": last_seq})
        # when
        sent = await send(ann, group, "hi bob")
        # then
        event = (await socket.data(operation))["conversationEvents"]
    assert event["__typename"] == "MessageAdded"
    assert event["seq"] == sent["seq"] == last_seq + 1
    assert event["conversationId"] == group
    assert event["message"]["body"] == "hi bob"
    assert event["message"]["author"]["username"] == ann.username


async def test_replay_then_live_while_five_senders_send_forty_each(
    server_url: str, new_user: NewUser
) -> None:
    # given a group of five, and three listeners joining at different moments
    senders = [await new_user() for _ in range(5)]
    group, start = await create_group(senders[0], *senders[1:], title="stampede")
    results: dict[str, list[int]] = {}

    async def listen(name: str, after: int, delay: float) -> None:
        await asyncio.sleep(delay)
        async with open_socket(server_url, senders[1].token) as socket:
            operation = await socket.subscribe(EVENTS, {"id": group, "after": after})
            seqs: list[int] = []
            while len(seqs) < 200:
                event = (await socket.data(operation, 30))["conversationEvents"]
                seqs.append(event["seq"])
            results[name] = seqs

    async def send_all(sender: User, index: int) -> None:
        for n in range(40):
            await send(sender, group, f"{index}.{n}")

    # when they all run at once (the late listeners replay what they missed)
    await asyncio.gather(
        listen("from the start", start, 0),
        listen("a little late", start, 0.3),
        listen("later still", start, 0.8),
        *(send_all(s, i) for i, s in enumerate(senders)),
    )
    # then each one saw every seq exactly once, in order
    expected = list(range(start + 1, start + 201))
    assert results == {name: expected for name in results}
    assert len(results) == 3


async def test_after_seq_replays_the_stored_timeline(server_url: str, new_user: NewUser) -> None:
    ann = await new_user()
    group, _ = await create_group(ann)
    for n in range(150):  # more than one replay page
        await send(ann, group, f"m{n}")
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group, "after": 0})
        events = await collect(socket, operation, 152)
    assert [e["seq"] for e in events] == list(range(1, 153))
    assert events[0]["__typename"] == "MembersChanged"
    assert [e["message"]["body"] for e in events[2:]] == [f"m{n}" for n in range(150)]


async def test_every_kind_of_timeline_event(server_url: str, new_user: NewUser) -> None:
    ann, bob, cy = await new_user(), await new_user(), await new_user()
    group, last_seq = await create_group(ann, bob)
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group, "after": last_seq})
        message = (await send(ann, group, "v1"))["id"]
        await ann.client(EDIT_MESSAGE, id=message, body="v2")
        await bob.client(ADD_REACTION, id=message, emoji="🎉")
        await ann.client(ADD_MEMBERS, id=group, userIds=[cy.id])
        await ann.client(UPDATE_GROUP, input={"groupId": group, "description": "d"})
        await ann.client(DELETE_MESSAGE, id=message)
        events = []
        try:
            for _ in range(7):
                events.append((await socket.data(operation, 5))["conversationEvents"])
        finally:
            print("GOT", [e["__typename"] for e in events])
    kinds = [e["__typename"] for e in events]
    assert kinds == [
        "MessageAdded",
        "MessageEdited",
        "ReactionsChanged",
        "MembersChanged",
        "MessageAdded",  # "Ann added Cy"
        "ConversationUpdated",
        "MessageDeleted",
    ]
    assert [e["seq"] for e in events] == list(range(last_seq + 1, last_seq + 8))
    assert events[1]["message"]["body"] == "v2"
    assert events[2]["message"]["reactions"] == [
        {"emoji": "🎉", "count": 1, "viewerHasReacted": True}
    ]
    assert [u["username"] for u in events[3]["added"]] == [cy.username]
    assert events[6]["message"]["body"] is None


async def test_removed_member_stream_ends_with_forbidden(
    server_url: str, new_user: NewUser
) -> None:
    ann, bob = await new_user(), await new_user()
    group, last_seq = await create_group(ann, bob)
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group, "after": last_seq})
        # once an event has arrived, the subscription is surely live
        await send(ann, group, "bye")
        await socket.data(operation)
        await ann.client(REMOVE_MEMBER, id=group, userId=bob.id)
        removal = (await socket.data(operation))["conversationEvents"]
        assert removal["__typename"] == "MembersChanged"
        assert [u["username"] for u in removal["removed"]] == [bob.username]
        ending = await socket.next(operation)
    assert ending["type"] == "next"
    assert ending["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_non_members_cannot_subscribe(server_url: str, new_user: NewUser) -> None:
    ann, eve = await new_user(), await new_user()
    group, _ = await create_group(ann)
    async with open_socket(server_url, eve.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group})
        message = await socket.next(operation)
    assert error_code(message) == "NOT_FOUND"


async def test_anonymous_socket_cannot_subscribe(server_url: str, new_user: NewUser) -> None:
    ann = await new_user()
    group, _ = await create_group(ann)
    async with open_socket(server_url) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group})
        message = await socket.next(operation)
    assert error_code(message) == "UNAUTHENTICATED"


async def test_a_bad_token_is_refused_with_4403(server_url: str) -> None:
    url = server_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as connection:
        await connection.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        )
        try:
            await asyncio.wait_for(connection.recv(), 10)
            raise AssertionError("the server acknowledged a bad token")
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403


async def test_queries_and_mutations_run_over_the_socket(
    server_url: str, new_user: NewUser
) -> None:
    ann = await new_user()
    group, last_seq = await create_group(ann)
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(SEND, {"input": {"conversationId": group, "body": "ws"}})
        sent = await socket.data(operation)
        viewer = await socket.subscribe("{ viewer { username } }")
        assert (await socket.data(viewer))["viewer"]["username"] == ann.username
    assert sent["sendMessage"]["seq"] == last_seq + 1


async def test_failed_send_publishes_nothing(server_url: str, new_user: NewUser) -> None:
    ann = await new_user()
    group, last_seq = await create_group(ann)
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group, "after": last_seq})
        replying_to_nothing = {
            "conversationId": group,
            "body": "x",
            "replyToId": made_up_id("Message"),
        }
        bad = await ann.client.error(SEND, input=replying_to_nothing)
        assert bad.code == "BAD_USER_INPUT"
        await send(ann, group, "good")
        event = (await socket.data(operation))["conversationEvents"]
    assert (event["seq"], event["message"]["body"]) == (last_seq + 1, "good")


async def test_viewer_events(server_url: str, new_user: NewUser) -> None:
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    query = """
    subscription { viewerEvents {
      __typename conversationId
      ... on MessageAdded { message { seq body } }
      ... on ConversationJoined { conversation { id } }
      ... on ReadMarkerMoved { lastReadSeq unreadCount }
    } }
    """
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(query)
        sends: list[int] = []

        async def send_hey() -> None:
            sends.append((await send(ann, group, "hey"))["seq"])

        first = event = (await first_after(socket, operation, send_hey))["viewerEvents"]
        while event["message"]["seq"] != sends[-1]:  # sends that raced the set-up
            event = (await socket.data(operation))["viewerEvents"]
        other, _ = await create_group(ann, bob, title="second")
        joined = (await socket.data(operation))["viewerEvents"]
        await bob.client(MARK_READ, id=group, seq=sends[-1])
        marker = (await socket.data(operation))["viewerEvents"]
    assert first["__typename"] == "MessageAdded"
    assert (first["conversationId"], first["message"]["body"]) == (group, "hey")
    assert joined == {
        "__typename": "ConversationJoined",
        "conversationId": other,
        "conversation": {"id": other},
    }
    assert marker["__typename"] == "ReadMarkerMoved"
    assert (marker["conversationId"], marker["lastReadSeq"], marker["unreadCount"]) == (
        group,
        sends[-1],
        0,
    )


async def test_typing_starts_stops_and_expires(server_url: str, new_user: NewUser) -> None:
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    query = """
    subscription($c: ID!) { typing(conversationId: $c) { conversationId typing user { username } } }
    """
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(query, {"c": group})
        # refreshing while typing announces nothing new, so repeating is safe
        started = (
            await first_after(socket, operation, lambda: ann.client(SET_TYPING, c=group, t=True))
        )["typing"]
        await send(ann, group, "done typing")
        stopped = (await socket.data(operation))["typing"]
        await ann.client(SET_TYPING, c=group, t=True)
        again = (await socket.data(operation))["typing"]
        loop = asyncio.get_running_loop()
        begun = loop.time()
        expired = (await socket.data(operation, 15))["typing"]
        waited = loop.time() - begun
    assert (started["typing"], started["user"]["username"]) == (True, ann.username)
    assert stopped["typing"] is False
    assert again["typing"] is True
    assert expired["typing"] is False
    assert 3 < waited < 10


async def test_read_receipts(server_url: str, new_user: NewUser) -> None:
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    query = """
    subscription($c: ID!) { readReceipts(conversationId: $c) { lastReadSeq user { username } at } }
    """
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(query, {"c": group})
        read: list[int] = []

        async def send_and_read() -> None:
            seq = (await send(ann, group, "read me"))["seq"]
            await bob.client(MARK_READ, id=group, seq=seq)
            read.append(seq)

        receipt = (await first_after(socket, operation, send_and_read))["readReceipts"]
    assert receipt["lastReadSeq"] in read
    assert receipt["user"]["username"] == bob.username


async def test_presence_follows_sockets(server_url: str, new_user: NewUser) -> None:
    ann, bob = await new_user(), await new_user()
    query = """
    subscription($u: [ID!]!) {
      presence(userIds: $u) { online lastSeenAt user { username online } }
    }
    """
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(query, {"u": [bob.id]})
        initial = (await socket.data(operation))["presence"]
        async with open_socket(server_url, bob.token):
            online = (await socket.data(operation))["presence"]
            seen = await bob.client("query($u: ID!) { user(id: $u) { online } }", u=bob.id)
        offline = (await socket.data(operation))["presence"]
    assert initial["online"] is False
    assert online["online"] is True and seen["user"]["online"] is True
    assert offline["online"] is False and offline["lastSeenAt"] is not None


async def test_legacy_graphql_ws_protocol(server_url: str, new_user: NewUser) -> None:
    ann = await new_user()
    group, last_seq = await create_group(ann)
    url = server_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[Subprotocol("graphql-ws")]) as connection:
        await connection.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {ann.token}"}}
            )
        )
        assert json.loads(await connection.recv())["type"] == "connection_ack"
        await connection.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "start",
                    "payload": {"query": EVENTS, "variables": {"id": group, "after": last_seq}},
                }
            )
        )
        await send(ann, group, "legacy")
        while True:
            message = json.loads(await asyncio.wait_for(connection.recv(), 10))
            if message["type"] != "ka":
                break
    assert message["type"] == "data"
    event = message["payload"]["data"]["conversationEvents"]
    assert (event["seq"], event["message"]["body"]) == (last_seq + 1, "legacy")


async def test_graphql_errors_keep_their_codes_over_the_socket(
    server_url: str, new_user: NewUser
) -> None:
    ann = await new_user()
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": "not-an-id"})
        message = await socket.next(operation)
    assert error_code(message) == "BAD_USER_INPUT"


async def test_viewer_events_stop_at_removal(server_url: str, new_user: NewUser) -> None:
    # given Bob in two groups of Ann's, listening to his viewer events
    ann, bob = await new_user(), await new_user()
    secret, _ = await create_group(ann, bob, title="secret")
    open_group, _ = await create_group(ann, bob, title="open")
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(VIEWER_MESSAGES)

        async def ping() -> None:
            await send(ann, open_group, "ping")

        event = await first_after(socket, operation, ping)
        while event["viewerEvents"]["__typename"] == "MessageAdded":  # drain the pings
            try:
                event = await socket.data(operation, 1)
            except TimeoutError:
                break
        # when Ann removes him, then writes to the group he left and to the other one
        await ann.client(REMOVE_MEMBER, id=secret, userId=bob.id)
        await send(ann, secret, "not for Bob")
        await send(ann, open_group, "after")
        seen: list[tuple[str, str, str | None]] = []
        while not seen or seen[-1] != ("MessageAdded", open_group, "after"):
            item = (await socket.data(operation))["viewerEvents"]
            seen.append(
                (item["__typename"], item["conversationId"], item.get("message", {}).get("body"))
            )
    # then he is told he left, and sees nothing more from that group
    assert ("ConversationLeft", secret, None) in seen
    assert all(body != "not for Bob" for _, _, body in seen)


async def test_typing_and_receipts_end_for_a_removed_member(
    server_url: str, new_user: NewUser
) -> None:
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    async with open_socket(server_url, bob.token) as socket:
        typing_op = await socket.subscribe(
            "subscription($c: ID!) { typing(conversationId: $c) { typing } }", {"c": group}
        )
        receipts_op = await socket.subscribe(
            "subscription($c: ID!) { readReceipts(conversationId: $c) { lastReadSeq } }",
            {"c": group},
        )
        await first_after(socket, typing_op, lambda: ann.client(SET_TYPING, c=group, t=True))

        async def ann_reads() -> None:
            seq = (await send(ann, group, "read"))["seq"]
            await send(bob, group, "read")  # something by another for Ann to read
            await ann.client(MARK_READ, id=group, seq=seq + 1)

        await first_after(socket, receipts_op, ann_reads)  # both streams are live now
        await ann.client(REMOVE_MEMBER, id=group, userId=bob.id)
        codes = [await ending_code(socket, op) for op in (typing_op, receipts_op)]
    assert codes == ["FORBIDDEN", "FORBIDDEN"]


async def test_legacy_protocol_carries_queries_and_mutations(
    server_url: str, new_user: NewUser
) -> None:
    ann = await new_user()
    url = server_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[Subprotocol("graphql-ws")]) as connection:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {ann.token}"}}
        await connection.send(json.dumps(init))
        assert json.loads(await connection.recv())["type"] == "connection_ack"
        start = {"id": "q", "type": "start", "payload": {"query": "{ viewer { username } }"}}
        await connection.send(json.dumps(start))
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["type"] != "complete":
            message = json.loads(await asyncio.wait_for(connection.recv(), 10))
            if message["type"] != "ka":
                messages.append(message)
    assert messages[0] == {
        "type": "data",
        "id": "q",
        "payload": {"data": {"viewer": {"username": ann.username}}},
    }


async def test_viewer_events_carry_the_first_message_of_a_new_conversation(
    server_url: str, new_user: NewUser
) -> None:
    ann, bob = await new_user(), await new_user()
    warm_up, _ = await create_group(ann, bob, title="warm-up")
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(VIEWER_MESSAGES)

        async def ping() -> None:
            await send(ann, warm_up, "ping")

        await first_after(socket, operation, ping)
        # when Ann opens a direct conversation and writes at once
        direct = await open_direct(ann, bob)
        await send(ann, direct, "first!")
        seen = []
        while ("MessageAdded", direct, "first!") not in seen:
            item = (await socket.data(operation))["viewerEvents"]
            seen.append(
                (item["__typename"], item["conversationId"], item.get("message", {}).get("body"))
            )
    # then the join comes first, then the message, once
    mine = [s for s in seen if s[1] == direct]
    assert mine == [("ConversationJoined", direct, None), ("MessageAdded", direct, "first!")]


async def test_previewers_signals_end_when_the_group_goes_private(
    server_url: str, new_user: NewUser
) -> None:
    ann, carl = await new_user(), await new_user()
    group, _ = await create_group(ann, public=True, title="open")
    async with open_socket(server_url, carl.token) as socket:  # Carl only previews it
        operation = await socket.subscribe(
            "subscription($c: ID!) { typing(conversationId: $c) { typing } }", {"c": group}
        )
        await first_after(socket, operation, lambda: ann.client(SET_TYPING, c=group, t=True))
        await ann.client(UPDATE_GROUP, input={"groupId": group, "isPublic": False})
        code = await ending_code(socket, operation)
    assert code == "FORBIDDEN"
    refused = await carl.client.error(SET_TYPING, c=group, t=True)
    assert refused.code == "NOT_FOUND"  # private now: as if it did not exist


async def test_replay_through_an_old_removal_goes_on_for_a_member_added_back(
    server_url: str, new_user: NewUser
) -> None:
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    await ann.client(REMOVE_MEMBER, id=group, userId=bob.id)
    await ann.client(ADD_MEMBERS, id=group, userIds=[bob.id])
    last = (await send(ann, group, "welcome back"))["seq"]
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group, "after": 0})
        events = await collect(socket, operation, last)
    assert [e["seq"] for e in events] == list(range(1, last + 1))
    assert events[-1]["message"]["body"] == "welcome back"


REMOVE_SAY_ADD = """
mutation Churn($c: ID!, $u: ID!) {
  out: removeMember(conversationId: $c, userId: $u) { id }
  said: sendMessage(input: {conversationId: $c, body: "while Bob was out"}) { id }
  back: addMembers(conversationId: $c, userIds: [$u]) { id }
}
"""
REMOVE_ADD = """
mutation Churn($c: ID!, $u: ID!) {
  out: removeMember(conversationId: $c, userId: $u) { id }
  back: addMembers(conversationId: $c, userIds: [$u]) { id }
}
"""


async def test_viewer_events_of_a_member_removed_and_added_back_at_once(
    server_url: str, new_user: NewUser
) -> None:
    # given Bob in Ann's private group, watching his viewerEvents
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob, title="churn")
    async with open_socket(server_url, bob.token) as socket:
        operation = await socket.subscribe(VIEWER_MESSAGES)
        await first_after(socket, operation, lambda: send(ann, group, "ping"))
        for churn in (REMOVE_ADD, REMOVE_SAY_ADD) * 3:
            # when Ann removes him (and writes) and adds him back, in one request
            await ann.client(churn, c=group, u=bob.id)
            await send(ann, group, "welcome back")
            seen = []
            while ("MessageAdded", "welcome back") not in seen:
                item = (await socket.data(operation))["viewerEvents"]
                if item["conversationId"] == group:
                    seen.append((item["__typename"], item.get("message", {}).get("body")))
            # then he never sees what was said while he was out, and goes on
            # receiving the group's messages
            bodies = [body for kind, body in seen if kind == "MessageAdded"]
            assert "while Bob was out" not in bodies, seen
            assert bodies[-1] == "welcome back"
            assert not any(body and "removed" in body for body in bodies), seen

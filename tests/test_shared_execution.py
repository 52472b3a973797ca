"""Shared execution of subscriptions, over real sockets of both protocols.

The server runs in this process (uvicorn on a loopback port) so the tests can
count what it rendered: an event is rendered once for every subscriber of the
same document and variables, and once per viewer where a field differs per
viewer, and every subscriber still gets exactly its own view.
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets
from graphql import parse
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from resolvers.context import OperationScope
from resolvers.live import sharing
from schema import extensions
from schema.ids import decode_global_id
from tests.client import Client, User, sign_up
from tests.inprocess import InProcess, in_process
from tests.operations import REMOVE_MEMBER, create_group, send
from tests.server import free_port

QUIET = {"live_resync_seconds": 3600.0}

MESSAGES = """
subscription Messages($id: ID!, $after: Int) {
  conversationEvents(conversationId: $id, afterSeq: $after) {
    seq conversationId at
    ... on MessageAdded { message { id seq body author { id username } createdAt } }
  }
}
"""

PER_VIEWER = """
subscription PerViewer($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename seq
    ... on MessageAdded { message { body conversation { ... on Group { viewerRole } } } }
    ... on ReactionsChanged { message { reactions { emoji count viewerHasReacted } } }
  }
}
"""

WITH_BODY = """
subscription WithBody($id: ID!, $withBody: Boolean!) {
  conversationEvents(conversationId: $id) {
    seq
    ... on MessageAdded { message { id body @include(if: $withBody) } }
  }
}
"""

VIEWER_EVENTS = """
subscription { viewerEvents { __typename conversationId ... on MessageAdded { message { body } } } }
"""

REACT = """
mutation ($id: ID!, $emoji: String!) { addReaction(messageId: $id, emoji: $emoji) { id } }
"""


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, InProcess]]:
    """The app in this process, behind a real uvicorn on a loopback port."""
    async with in_process(tmp_path, **QUIET) as app:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
            )
        )
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}", app
        finally:
            server.should_exit = True
            await task


class Subscriber:
    """One socket of either protocol with one subscription on it."""

    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol

    @classmethod
    async def open(
        cls, url: str, user: User, query: str, variables: dict[str, Any], protocol: str
    ) -> Subscriber:
        connection = await websockets.connect(
            url.replace("http://", "ws://") + "/graphql", subprotocols=[Subprotocol(protocol)]
        )
        await connection.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.token}"}}
            )
        )
        assert json.loads(await connection.recv())["type"] == "connection_ack"
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await connection.send(
            json.dumps(
                {"id": "op", "type": start, "payload": {"query": query, "variables": variables}}
            )
        )
        return cls(connection, protocol)

    async def data(self) -> dict[str, Any]:
        """The next result's data (keep-alives skipped)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), 10))
            if message["type"] == "ka":
                continue
            expected = "next" if self.protocol == "graphql-transport-ws" else "data"
            assert message["type"] == expected
            assert message["id"] == "op"
            assert set(message) == {"id", "type", "payload"}
            assert "errors" not in message["payload"], message
            result: dict[str, Any] = message["payload"]["data"]
            return result


async def users(url: str, count: int) -> list[User]:
    client = Client(url)
    return list(await asyncio.gather(*(sign_up(client) for _ in range(count))))


async def live(app: InProcess, group: str, listeners: int) -> None:
    """Until the group's feed has this many listeners (their streams are live)."""
    key = decode_global_id(group)[1]
    for _ in range(500):
        feed = app.services.feeds.followed().get(key)
        if feed is not None and feed.listeners >= listeners:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscriptions did not go live")


def counted() -> sharing.Stats:
    return sharing.Stats(
        shared_renders=sharing.stats.shared_renders,
        viewer_renders=sharing.stats.viewer_renders,
        frames=sharing.stats.frames,
    )


def since(before: sharing.Stats) -> tuple[int, int, int]:
    now = sharing.stats
    return (
        now.shared_renders - before.shared_renders,
        now.viewer_renders - before.viewer_renders,
        now.frames - before.frames,
    )


async def test_each_event_is_rendered_once_for_every_subscriber(tmp_path: Path) -> None:
    async with served(tmp_path) as (url, app):
        owner, *members = await users(url, 7)
        group, _ = await create_group(owner, *members)
        protocols = ["graphql-transport-ws", "graphql-ws"]
        subscribers = [
            await Subscriber.open(url, member, MESSAGES, {"id": group}, protocols[i % 2])
            for i, member in enumerate(members)
        ]
        await live(app, group, len(subscribers))
        before = counted()
        sent = [await send(owner, group, f"hello {i}") for i in range(5)]
        for subscriber in subscribers:
            got = [(await subscriber.data())["conversationEvents"] for _ in sent]
            assert [e["seq"] for e in got] == [m["seq"] for m in sent]
            assert [e["message"]["body"] for e in got] == [f"hello {i}" for i in range(5)]
            assert {e["message"]["author"]["username"] for e in got} == {owner.username}
        assert since(before) == (5, 0, 5 * len(subscribers))
        # Once done, the memo holds the payloads themselves, not their tasks.
        feed = app.services.feeds.followed()[decode_global_id(group)[1]]
        memo = [value for event in feed.window for value in event.rendered.values()]
        assert len(memo) == 5 and all(isinstance(value, str) for value in memo)
        for subscriber in subscribers:
            await subscriber.connection.close()


async def test_what_differs_per_viewer_is_rendered_for_each_viewer(tmp_path: Path) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        anns = await Subscriber.open(url, ann, PER_VIEWER, {"id": group}, "graphql-transport-ws")
        bobs = [
            await Subscriber.open(url, bob, PER_VIEWER, {"id": group}, protocol)
            for protocol in ("graphql-transport-ws", "graphql-ws")
        ]
        await live(app, group, 3)
        before = counted()
        message = await send(ann, group, "mine")
        added = [(await s.data())["conversationEvents"] for s in (anns, *bobs)]
        assert [e["message"]["conversation"]["viewerRole"] for e in added] == [
            "OWNER",
            "MEMBER",
            "MEMBER",
        ]
        await bob.client(REACT, id=message["id"], emoji="👍")
        changed = [(await s.data())["conversationEvents"] for s in (anns, *bobs)]
        reactions = [e["message"]["reactions"] for e in changed]
        assert reactions == [
            [{"emoji": "👍", "count": 1, "viewerHasReacted": False}],
            [{"emoji": "👍", "count": 1, "viewerHasReacted": True}],
            [{"emoji": "👍", "count": 1, "viewerHasReacted": True}],
        ]
        shared, per_viewer, frames = since(before)
        # One attempt for everyone finds the viewer-dependent field; from then
        # on each event is rendered once per viewer (two), not per socket (three).
        assert (shared, per_viewer, frames) == (1, 4, 6)
        for subscriber in (anns, *bobs):
            await subscriber.connection.close()


async def test_variables_below_the_root_field_tell_shapes_apart(tmp_path: Path) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob, cy = await users(url, 3)
        group, _ = await create_group(ann, bob, cy)
        with_body = await Subscriber.open(
            url, bob, WITH_BODY, {"id": group, "withBody": True}, "graphql-transport-ws"
        )
        without = await Subscriber.open(
            url, cy, WITH_BODY, {"id": group, "withBody": False}, "graphql-ws"
        )
        await live(app, group, 2)
        before = counted()
        await send(ann, group, "body?")
        assert "body" in (await with_body.data())["conversationEvents"]["message"]
        assert "body" not in (await without.data())["conversationEvents"]["message"]
        assert since(before) == (2, 0, 2)
        for subscriber in (with_body, without):
            await subscriber.connection.close()


async def test_viewer_events_share_the_rendering_of_a_message(tmp_path: Path) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob, cy = await users(url, 3)
        group, _ = await create_group(ann, bob, cy)
        subscribers = [
            await Subscriber.open(url, user, VIEWER_EVENTS, {}, "graphql-transport-ws")
            for user in (bob, cy)
        ]
        await live(app, group, 2)
        before = counted()
        await send(ann, group, "to all")
        for subscriber in subscribers:
            event = (await subscriber.data())["viewerEvents"]
            assert (event["__typename"], event["message"]["body"]) == ("MessageAdded", "to all")
        assert since(before) == (1, 0, 2)
        for subscriber in subscribers:
            await subscriber.connection.close()


def test_root_field_arguments_do_not_split_shapes() -> None:
    document = parse(WITH_BODY)
    assert sharing.variables_below_root(document, "WithBody") == {"withBody"}
    assert sharing.variables_below_root(parse(MESSAGES), None) == set()
    spread = parse(
        """
        subscription S($id: ID!, $n: Int) { ...Root }
        fragment Root on Subscription {
          conversationEvents(conversationId: $id) {
            ... on MembersChanged { actor { id } }
            ... F
          }
        }
        fragment F on ConversationEvent { ... on MessageAdded { message { conversation {
          members(first: $n) { edges { node { user { id } } } } } } } }
        """
    )
    assert sharing.variables_below_root(spread, "S") == {"n"}


async def test_documents_are_parsed_and_validated_once(tmp_path: Path) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        query = "query Once { __typename }"
        parsed, validated = (
            extensions.parse_document.cache_info(),
            extensions.validate_document.cache_info(),
        )
        for _ in range(3):
            assert await app.client(query) == {"__typename": "Query"}
        assert extensions.parse_document.cache_info().misses == parsed.misses + 1
        assert extensions.parse_document.cache_info().hits == parsed.hits + 2
        assert extensions.validate_document.cache_info().misses == validated.misses + 1
        # Errors still come from the first checks to find them, with their codes.
        error = await app.client.error("query Once { nope }")
        assert error.code == "GRAPHQL_VALIDATION_FAILED"
        error = await app.client.error("query { viewer {")
        assert error.code == "GRAPHQL_PARSE_FAILED"


LAST_MESSAGE = """
subscription Last($id: ID!) {
  conversationEvents(conversationId: $id) {
    seq
    ... on ReactionsChanged {
      message { conversation { lastMessage { reactions { emoji viewerHasReacted } } } }
    }
  }
}
"""


async def test_viewer_has_reacted_read_from_the_database_is_per_viewer(tmp_path: Path) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        older = await send(ann, group, "older")
        newest = await send(ann, group, "newest")
        await bob.client(REACT, id=newest["id"], emoji="👍")
        subscribers = [
            await Subscriber.open(url, user, LAST_MESSAGE, {"id": group}, "graphql-transport-ws")
            for user in (ann, bob)
        ]
        await live(app, group, 2)
        await ann.client(REACT, id=older["id"], emoji="🎉")
        # lastMessage is not the event's own message: its reactions come from
        # the database, where "the viewer" must not be read as nobody.
        seen = [
            (await s.data())["conversationEvents"]["message"]["conversation"]["lastMessage"]
            for s in subscribers
        ]
        assert [m["reactions"] for m in seen] == [
            [{"emoji": "👍", "viewerHasReacted": False}],
            [{"emoji": "👍", "viewerHasReacted": True}],
        ]
        for subscriber in subscribers:
            await subscriber.connection.close()


async def _message(subscriber: Subscriber) -> dict[str, Any]:
    """The next frame but keep-alives."""
    while True:
        message = json.loads(await asyncio.wait_for(subscriber.connection.recv(), 10))
        if message["type"] != "ka":
            return dict(message)


def _operation_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running one of Strawberry's operations (its handlers' methods)."""
    names = ("run_operation", "handle_async_results")
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__.rsplit(".", 1)[-1] in names  # type: ignore[union-attr]
    ]


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Until condition holds (some 2 s at most)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


def unfollowed(app: InProcess, group: str) -> Callable[[], bool]:
    """Whether nobody on this node follows the group's feed any more."""
    key = decode_global_id(group)[1]

    def check() -> bool:
        feed = app.services.feeds.followed().get(key)
        return feed is None or feed.listeners == 0

    return check


def strawberry_done() -> bool:
    return not _operation_tasks()


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_live_stream_leaves_strawberrys_task_and_still_answers_the_client(
    tmp_path: Path, protocol: str
) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        subscriber = await Subscriber.open(url, bob, MESSAGES, {"id": group}, protocol)
        await live(app, group, 1)
        # Strawberry's task for the operation has ended (it held some 20 KB
        # per subscription); the stream goes on in a task of its own.
        await eventually(strawberry_done, "Strawberry's operation task did not end")
        await send(ann, group, "still here")
        assert (await subscriber.data())["conversationEvents"]["message"]["body"] == "still here"
        # The client's complete/stop ends it: the legacy protocol answers complete.
        stop = "complete" if protocol == "graphql-transport-ws" else "stop"
        await subscriber.connection.send(json.dumps({"id": "op", "type": stop}))
        if protocol == "graphql-ws":
            assert await _message(subscriber) == {"id": "op", "type": "complete"}
        await eventually(unfollowed(app, group), "the stream did not stop")
        # The id is free again.
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await subscriber.connection.send(
            json.dumps(
                {
                    "id": "op",
                    "type": start,
                    "payload": {"query": MESSAGES, "variables": {"id": group}},
                }
            )
        )
        await live(app, group, 1)
        await send(ann, group, "again")
        assert (await subscriber.data())["conversationEvents"]["message"]["body"] == "again"
        await subscriber.connection.close()
        await eventually(unfollowed(app, group), "the stream outlived its socket")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_live_stream_that_fails_ends_with_its_error_then_complete(
    tmp_path: Path, protocol: str
) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        subscriber = await Subscriber.open(url, bob, MESSAGES, {"id": group}, protocol)
        await live(app, group, 1)
        await ann.client(REMOVE_MEMBER, id=group, userId=bob.id)
        assert "conversationEvents" in await subscriber.data()  # the removal itself
        ending = await _message(subscriber)
        assert ending["type"] == ("next" if protocol == "graphql-transport-ws" else "data")
        assert ending["payload"]["data"] is None
        [error] = ending["payload"]["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["path"] == ["conversationEvents"]
        assert await _message(subscriber) == {"id": "op", "type": "complete"}
        await subscriber.connection.close()


async def test_an_adopted_operation_id_is_still_taken(tmp_path: Path) -> None:
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        subscriber = await Subscriber.open(
            url, bob, MESSAGES, {"id": group}, "graphql-transport-ws"
        )
        await live(app, group, 1)
        await subscriber.connection.send(
            json.dumps(
                {
                    "id": "op",
                    "type": "subscribe",
                    "payload": {"query": MESSAGES, "variables": {"id": group}},
                }
            )
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _message(subscriber)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_an_ended_stream_is_freed_by_reference_counting(
    tmp_path: Path, protocol: str
) -> None:
    """Its task, context and handler go when the socket does, without the cyclic collector."""
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        gc.collect()
        gc.disable()
        try:
            subscriber = await Subscriber.open(url, bob, MESSAGES, {"id": group}, protocol)
            await live(app, group, 1)
            await send(ann, group, "one")
            await subscriber.data()
            pumps = [
                weakref.ref(task)
                for task in asyncio.all_tasks()
                if task.get_coro().__qualname__ == "_pump"  # type: ignore[union-attr]
            ]
            assert len(pumps) == 1
            await subscriber.connection.close()
            await eventually(unfollowed(app, group), "the stream outlived its socket")
            await eventually(lambda: pumps[0]() is None, "the stream's task was kept")
        finally:
            gc.enable()


async def test_a_live_subscription_keeps_no_row_of_its_viewer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each live stream keeps its viewer's values, not an ORM row (some 3 KB) per socket."""
    shed: list[OperationScope] = []
    original = OperationScope.shed

    def recording(scope: OperationScope) -> None:
        shed.append(scope)
        original(scope)

    monkeypatch.setattr(OperationScope, "shed", recording)
    async with served(tmp_path) as (url, app):
        ann, *others = await users(url, 4)
        group, _ = await create_group(ann, *others)
        subscribers = [
            await Subscriber.open(url, user, PER_VIEWER, {"id": group}, "graphql-transport-ws")
            for user in (ann, *others)
        ]
        await live(app, group, 4)
        assert len(shed) == 4
        for scope in shed:
            assert scope._viewer is None and scope._shed_viewer is not None  # noqa: SLF001
            assert scope._db is None  # noqa: SLF001
        # And each still sees its own view: the row is made again when asked for.
        await send(ann, group, "roles")
        roles = [
            (await s.data())["conversationEvents"]["message"]["conversation"]["viewerRole"]
            for s in subscribers
        ]
        assert roles == ["OWNER", "MEMBER", "MEMBER", "MEMBER"]
        for subscriber in subscribers:
            await subscriber.connection.close()


async def test_finished_operations_leave_no_scope_behind(tmp_path: Path) -> None:
    """Timers and tasks made during an operation copy its context; the copies must not
    keep its scope (on SQLite, each pool checkout leaves a 60-second timer behind)."""
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        await send(ann, group, "before")
        subscriber = await Subscriber.open(url, bob, MESSAGES, {"id": group}, "graphql-ws")
        await live(app, group, 1)
        await eventually(strawberry_done, "Strawberry's operation task did not end")
        gc.collect()
        scopes = [o for o in gc.get_objects() if isinstance(o, OperationScope)]
        assert len(scopes) == 1  # the live stream's own
        await subscriber.connection.close()


async def test_a_stream_that_waited_for_the_database_leaves_nothing_when_it_ends(
    tmp_path: Path,
) -> None:
    """A wait for SQLite's one connection leaves a 60-second timer holding a copy of the
    context: neither the stream nor its socket may be kept by it."""
    async with served(tmp_path) as (url, app):
        ann, bob = await users(url, 2)
        group, _ = await create_group(ann, bob)
        connection = await websockets.connect(
            url.replace("http://", "ws://") + "/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
        )
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {bob.token}"}}
        await connection.send(json.dumps(init))
        assert json.loads(await connection.recv())["type"] == "connection_ack"
        session = app.services.sessionmaker()
        await session.execute(text("SELECT 1"))  # holds the connection (on SQLite)
        payload = {"query": MESSAGES, "variables": {"id": group}}
        await connection.send(json.dumps({"id": "op", "type": "subscribe", "payload": payload}))
        await asyncio.sleep(0.3)  # the stream's opening reads wait for it
        await session.close()
        await live(app, group, 1)
        await connection.send(json.dumps({"id": "op", "type": "complete"}))
        await eventually(unfollowed(app, group), "the stream did not stop")
        await asyncio.sleep(0.2)
        gc.collect()
        assert [o for o in gc.get_objects() if isinstance(o, OperationScope)] == []
        await connection.close()

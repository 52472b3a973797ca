"""Malformed WebSocket frames get their protocol's answer, over real sockets.

graphql-transport-ws closes the socket with 4400 Bad Request; the legacy
graphql-ws protocol answers with an error (or connection_error) frame and the
socket stays usable. Nothing reaches the ASGI server's error handler: each
test reads the log of a server of its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from tests.backends import database
from tests.client import Client, sign_up
from tests.server import running_server

TRANSPORT_WS = Subprotocol("graphql-transport-ws")
LEGACY_WS = Subprotocol("graphql-ws")

TYPENAME = "{ __typename }"
VIEWER_EVENTS = "subscription { viewerEvents { __typename } }"


@dataclass
class LoggedServer:
    url: str
    log: Path

    def mark(self) -> int:
        return self.log.stat().st_size

    def crashes_since(self, mark: int) -> list[str]:
        """Lines the server logged since ``mark`` that tell of an exception."""
        with self.log.open("rb") as log:
            log.seek(mark)
            lines = log.read().decode(errors="replace").splitlines()
        return [
            line for line in lines if "Traceback" in line or "Exception in ASGI application" in line
        ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    data_dir: Path = tmp_path_factory.mktemp("frames")
    with database(data_dir) as (database_url, broadcast_url):
        with running_server(
            data_dir=data_dir, database_url=database_url, broadcast_url=broadcast_url
        ) as running:
            port = urlsplit(running.url).port
            yield LoggedServer(url=running.url, log=data_dir / f"server-{port}.log")


@asynccontextmanager
async def acknowledged(
    server: LoggedServer, protocol: Subprotocol, init: dict[str, Any] | None = None
) -> AsyncIterator[ClientConnection]:
    """A socket whose connection_init has been acknowledged."""
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[protocol]) as connection:
        await connection.send(json.dumps({"type": "connection_init", "payload": init or {}}))
        assert await receive(connection) == {"type": "connection_ack"}
        yield connection


async def receive(connection: ClientConnection) -> dict[str, Any]:
    """The next message, past the legacy protocol's keep-alives."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(connection.recv(), 10))
        if message["type"] != "ka":
            return message


async def until_closed(
    connection: ClientConnection,
) -> tuple[list[dict[str, Any]], int | None, str]:
    """What the server sent until it closed the socket, and its close code and reason."""
    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(await receive(connection))
    except websockets.ConnectionClosed:
        pass
    return messages, connection.close_code, connection.close_reason or ""


def frame(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def subscribe(payload: object, operation_id: object = "1") -> dict[str, object]:
    return {"id": operation_id, "type": "subscribe", "payload": payload}


def start(payload: object, operation_id: object = "1") -> dict[str, object]:
    return {"id": operation_id, "type": "start", "payload": payload}


# graphql-transport-ws: every one closes the socket with 4400 and this reason.
TRANSPORT_WS_MALFORMED: dict[str, tuple[object, str]] = {
    "a JSON array": ([], "Message must be a JSON object"),
    "a JSON string": ('"x"', "Message must be a JSON object"),
    "a JSON number": ("1", "Message must be a JSON object"),
    "JSON null": ("null", "Message must be a JSON object"),
    "a type that is no message type": ({"type": "x" * 300}, "Unknown message type"),
    "a subscribe whose payload is a string": (
        subscribe("x"),
        "'subscribe' payload must be an object",
    ),
    "a subscribe whose query is a number": (
        subscribe({"query": 5}),
        "'subscribe' payload.query must be a string",
    ),
    "a subscribe whose variables are a string": (
        subscribe({"query": TYPENAME, "variables": "x"}),
        "'subscribe' payload.variables must be an object or null",
    ),
    "a subscribe whose operationName is a number": (
        subscribe({"query": TYPENAME, "operationName": 5}),
        "'subscribe' payload.operationName must be a string or null",
    ),
    "a subscribe whose extensions are a string": (
        subscribe({"query": TYPENAME, "extensions": "x"}),
        "'subscribe' payload.extensions must be an object or null",
    ),
    "a subscribe whose id is a number": (
        subscribe({"query": TYPENAME}, 1),
        "'subscribe' needs a non-empty string 'id'",
    ),
    "a subscribe whose id is a list": (
        subscribe({"query": TYPENAME}, []),
        "'subscribe' needs a non-empty string 'id'",
    ),
    "a subscribe whose id is empty": (
        subscribe({"query": TYPENAME}, ""),
        "'subscribe' needs a non-empty string 'id'",
    ),
    "a subscribe whose id is a lone surrogate": (
        # json.dumps writes it as the escape \ud800, as a hostile client would
        subscribe({"query": TYPENAME}, "\ud800"),
        "'subscribe' needs a non-empty string 'id'",
    ),
    "a complete whose id is a number": (
        {"type": "complete", "id": 1},
        "'complete' needs a non-empty string 'id'",
    ),
    "a complete whose id is a list": (
        {"type": "complete", "id": []},
        "'complete' needs a non-empty string 'id'",
    ),
    "a complete whose id is empty": (
        {"type": "complete", "id": ""},
        "'complete' needs a non-empty string 'id'",
    ),
    "a ping whose payload is a string": (
        {"type": "ping", "payload": "x"},
        "'ping' payload must be an object or null",
    ),
    "a pong whose payload is a list": (
        {"type": "pong", "payload": []},
        "'pong' payload must be an object or null",
    ),
}


@pytest.mark.parametrize(
    ("sent", "reason"), TRANSPORT_WS_MALFORMED.values(), ids=TRANSPORT_WS_MALFORMED.keys()
)
async def test_transport_ws_closes_with_4400_on_a_malformed_frame(
    server: LoggedServer, sent: object, reason: str
) -> None:
    # given
    mark = server.mark()
    async with acknowledged(server, TRANSPORT_WS) as connection:
        # when
        await connection.send(frame(sent))
        # then
        messages, code, said = await until_closed(connection)
    assert (messages, code, said) == ([], 4400, reason)
    assert server.crashes_since(mark) == []


async def test_transport_ws_takes_a_null_connection_init_payload_for_none(
    server: LoggedServer,
) -> None:
    # given
    mark = server.mark()
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[TRANSPORT_WS]) as connection:
        # when
        await connection.send(json.dumps({"type": "connection_init", "payload": None}))
        # then
        assert await receive(connection) == {"type": "connection_ack"}
        await connection.send(json.dumps(subscribe({"query": TYPENAME})))
        assert await receive(connection) == {
            "id": "1",
            "type": "next",
            "payload": {"data": {"__typename": "Query"}},
        }
    assert server.crashes_since(mark) == []


async def test_transport_ws_close_reason_quoting_a_long_id_fits_a_close_frame(
    server: LoggedServer,
) -> None:
    # given a running subscription whose id is longer than a close frame's reason can be
    mark = server.mark()
    client = Client(server.url)
    try:
        ann = await sign_up(client)
    finally:
        await client.http.aclose()
    long_id = "i" * 300
    init = {"authorization": f"Bearer {ann.token}"}
    async with acknowledged(server, TRANSPORT_WS, init) as connection:
        await connection.send(json.dumps(subscribe({"query": VIEWER_EVENTS}, long_id)))
        # when the same id is subscribed again
        await connection.send(json.dumps(subscribe({"query": VIEWER_EVENTS}, long_id)))
        # then
        messages, code, reason = await until_closed(connection)
    assert (messages, code) == ([], 4409)
    assert reason == "Subscriber for " + "i" * 105 + "..."
    assert len(reason.encode()) == 123
    assert server.crashes_since(mark) == []


def connection_error(message: str) -> dict[str, object]:
    return {"type": "connection_error", "payload": {"message": message}}


def error(operation_id: str, message: str) -> dict[str, object]:
    return {"type": "error", "id": operation_id, "payload": {"message": message}}


# Legacy graphql-ws: every one gets this answer, and the socket goes on.
LEGACY_WS_MALFORMED: dict[str, tuple[object, dict[str, object]]] = {
    "text that is not JSON": ("not json", connection_error("Message must be valid JSON")),
    "a JSON array": ([], connection_error("Message must be a JSON object")),
    "a JSON string": ('"x"', connection_error("Message must be a JSON object")),
    "JSON null": ("null", connection_error("Message must be a JSON object")),
    "an object without type or id": ({}, connection_error("Message needs a string 'type'")),
    "a frame without type": ({"id": "1"}, error("1", "Message needs a string 'type'")),
    "a type that is no message type": (
        {"type": "subscribe", "id": "1"},
        error("1", "Unknown message type"),
    ),
    "a start without payload": (
        {"type": "start", "id": "1"},
        error("1", "'start' payload must be an object"),
    ),
    "a start whose payload is a string": (
        start("x"),
        error("1", "'start' payload must be an object"),
    ),
    "a start without query": (start({}), error("1", "'start' payload.query must be a string")),
    "a start whose query is a number": (
        start({"query": 5}),
        error("1", "'start' payload.query must be a string"),
    ),
    "a start whose variables are a string": (
        start({"query": TYPENAME, "variables": "x"}),
        error("1", "'start' payload.variables must be an object or null"),
    ),
    "a start whose operationName is a number": (
        start({"query": TYPENAME, "operationName": 5}),
        error("1", "'start' payload.operationName must be a string or null"),
    ),
    "a start without id": (
        {"type": "start", "payload": {"query": TYPENAME}},
        connection_error("'start' needs a string 'id'"),
    ),
    "a start whose id is a number": (
        start({"query": TYPENAME}, 1),
        connection_error("'start' needs a string 'id'"),
    ),
    "a second connection_init": (
        {"type": "connection_init", "payload": {}},
        connection_error("Too many initialisation requests"),
    ),
    "a stop without id": ({"type": "stop"}, connection_error("'stop' needs a string 'id'")),
    "a stop whose id is a list": (
        {"type": "stop", "id": []},
        connection_error("'stop' needs a string 'id'"),
    ),
}


@pytest.mark.parametrize(
    ("sent", "answer"), LEGACY_WS_MALFORMED.values(), ids=LEGACY_WS_MALFORMED.keys()
)
async def test_legacy_ws_answers_a_malformed_frame_and_goes_on(
    server: LoggedServer, sent: object, answer: dict[str, object]
) -> None:
    # given
    mark = server.mark()
    async with acknowledged(server, LEGACY_WS) as connection:
        # when
        await connection.send(frame(sent))
        # then
        assert await receive(connection) == answer
        await connection.send(json.dumps(start({"query": TYPENAME}, "after")))
        assert await receive(connection) == {
            "type": "data",
            "id": "after",
            "payload": {"data": {"__typename": "Query"}},
        }
        assert await receive(connection) == {"type": "complete", "id": "after"}
    assert server.crashes_since(mark) == []

"""uvicorn's WebSocket protocol as Parley serves it (resolvers/live/websocket_protocol.py):
an open socket keeps nothing of its handshake, and works, accepted or refused."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
import websockets
from starlette.types import Receive, Scope, Send

from resolvers.live.websocket_protocol import WebSocketProtocol


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts /echo and echoes its frames; refuses any other path."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    if scope["path"] != "/echo":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept", "subprotocol": "graphql-transport-ws"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message["text"].upper()})


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[uvicorn.Server, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(echo, port=port, ws=WebSocketProtocol, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn tells it by a flag only)
        await asyncio.sleep(0.01)
    try:
        yield server, port
    finally:
        server.should_exit = True
        await task


async def test_an_open_socket_keeps_no_handshake() -> None:
    async with serving() as (server, port):
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/echo",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        ) as ws:
            assert ws.subprotocol == "graphql-transport-ws"  # the accept's header went out
            await ws.send("hello")
            assert await ws.recv() == "HELLO"
            (protocol,) = server.server_state.connections
            assert isinstance(protocol, WebSocketProtocol)
            assert protocol.request is None
            assert protocol.response is None
            await ws.send("again")
            assert await ws.recv() == "AGAIN"


async def test_a_refused_socket_is_refused() -> None:
    async with serving() as (_, port):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{port}/elsewhere"):
                pass
        assert refused.value.response.status_code == 403

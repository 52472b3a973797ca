"""A small graphql-transport-ws client over a real socket, for the tests.

It keeps every message, so tests can assert exact sequences and close codes.
(test_live_clients.py also drives the same server with the `gql` library.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed with {code}: {reason}")
        self.code = code
        self.reason = reason


class Socket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.others: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())
        self.closed: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                queue = self.queues.get(message.get("id", ""))
                await (queue if queue is not None else self.others).put(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            close = Closed(self.connection.close_code, self.connection.close_reason or "")
            if not self.closed.done():
                self.closed.set_result(close)
            for queue in self.queues.values():
                await queue.put({"type": "__closed__", "close": close})

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation_id = str(next(self._ids))
        self.queues[operation_id] = asyncio.Queue()
        await self.connection.send(
            json.dumps(
                {
                    "id": operation_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return operation_id

    async def next(self, operation_id: str, within: float = 10) -> dict[str, Any]:
        """The next message of an operation (raises Closed when the socket closed)."""
        message = await asyncio.wait_for(self.queues[operation_id].get(), within)
        if message["type"] == "__closed__":
            raise message["close"]
        return message

    async def data(self, operation_id: str, within: float = 10) -> dict[str, Any]:
        message = await self.next(operation_id, within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        result: dict[str, Any] = message["payload"]["data"]
        return result

    async def stop(self, operation_id: str) -> None:
        await self.connection.send(json.dumps({"id": operation_id, "type": "complete"}))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.connection.close()


@contextlib.asynccontextmanager
async def open_socket(
    base_url: str, token: str | None = None, *, payload: dict[str, Any] | None = None
) -> AsyncIterator[Socket]:
    """A graphql-transport-ws socket that has been acknowledged."""
    url = base_url.replace("http://", "ws://") + "/graphql"
    connection = await websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
    socket = Socket(connection)
    try:
        init = (
            payload
            if payload is not None
            else ({"authorization": f"Bearer {token}"} if token else {})
        )
        await connection.send(json.dumps({"type": "connection_init", "payload": init}))
        ack = await asyncio.wait_for(socket.others.get(), 10)
        assert ack["type"] == "connection_ack", ack
        yield socket
    finally:
        await socket.close()

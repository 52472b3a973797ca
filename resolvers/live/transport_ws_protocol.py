"""The graphql-transport-ws protocol, with every client frame checked before it is read.

Strawberry's BaseGraphQLTransportWSHandler reads each frame as though it were a
well-formed message and only catches a missing key: a frame that is not a JSON
object (``[]``, ``"x"``, ``null``), a subscribe whose payload is not an object,
or an id that cannot be a dict key raises TypeError out of the handler, so the
socket drops with 1006 and the ASGI server logs "Exception in ASGI
application". What does not raise goes through unchecked: a non-string or
empty id, variables, operationName or extensions of the wrong type (these fail
later, inside the operation, as an internal error or not at all), a ping or
pong whose payload is not an object. And a connection_init whose payload is
null, which the protocol allows, is refused.

The protocol (graphql-ws's PROTOCOL.md) answers any invalid message by closing
the socket with 4400 Bad Request. This handler checks each frame as the
graphql-ws reference server does (its validateMessage) and does just that,
before Strawberry's dispatch sees the frame.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from resolvers.live.frames import as_message, is_operation_id, operation_problem, payload_problem
from resolvers.live.sharing import streaming_to


def message_problem(frame: object) -> str | None:
    """Why a frame is not a message a graphql-transport-ws client may send (None: it is)."""
    parsed = as_message(frame)
    if isinstance(parsed, str):
        return parsed
    message, kind = parsed
    if kind in ("connection_init", "ping", "pong"):
        return payload_problem(kind, message.get("payload"))
    if kind in ("subscribe", "complete"):
        operation_id = message.get("id")
        if not is_operation_id(operation_id):
            return f"'{kind}' needs a non-empty string 'id'"
        if kind == "subscribe":
            return operation_problem(kind, message.get("payload"), extensions=True)
        return None
    # connection_ack, next and error only ever go from server to client.
    return "Unknown message type"


class ValidatingGraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    async def handle_message(self, message: Message) -> None:
        frame: object = message  # as decoded from JSON, whatever the annotation says
        problem = message_problem(frame)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        if message["type"] == "connection_init" and message.get("payload", {}) is None:
            # Strawberry closes the socket on a null payload; it means none.
            message = ConnectionInitMessage(type="connection_init")
        await super().handle_message(message)
        if message["type"] == "subscribe":
            # Strawberry's read loop holds the last frame until the next one
            # comes, for a subscription its whole life: the document's text
            # is the operation's (and then its shape's) from here on.
            message.clear()  # type: ignore[attr-defined]  # (a dict, whatever the TypedDict)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # The operation's task, created in here, writes its results straight
        # to the socket when they are rendered once for many (live/sharing.py).
        with streaming_to(self.websocket, frame_type="next", message=message, adopter=self):
            await super().handle_subscribe(message)

    # sharing.Adopter: a live stream's own task becomes the operation's.

    def adopt(self, operation_id: str, parent: asyncio.Task[Any], task: asyncio.Task[None]) -> bool:
        operation = self.operations.get(operation_id)
        if operation is None or operation.task is not parent or operation.completed:
            return False
        # Strawberry's task for it now ends without a word (its "complete"
        # goes nowhere), and a complete from the client, or the socket's end,
        # cancels the stream's task.
        operation.completed = True
        operation.task = task
        task.add_done_callback(self._task_done)
        # Read once, at the start; the stream's shape keeps one copy for all.
        operation.query, operation.variables = "", None
        return True

    async def ended(self, operation_id: str, task: asyncio.Task[None]) -> None:
        operation = self.operations.get(operation_id)
        if operation is not None and operation.task is task:
            del self.operations[operation_id]
            await self.send_message({"id": operation_id, "type": "complete"})

    async def stopped(self, operation_id: str) -> None:
        pass  # the client's complete needs no answer

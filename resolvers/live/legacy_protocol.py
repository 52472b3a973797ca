"""The legacy graphql-ws protocol (subscriptions-transport-ws), carrying any operation.

Strawberry's handler for it runs documents through ``Schema.subscribe``,
which refuses queries and mutations; the protocol (and our contract) carry
them too. ``Schema.stream`` runs every kind, so the handler uses that.

Strawberry's handler also reads each frame as though it were well formed. A
frame that is not a JSON object, has no type, or is a start without id,
payload or query raises out of the handler: the socket drops with 1006 and the
ASGI server logs "Exception in ASGI application". A non-string id, or
variables or an operationName of the wrong type, go through to the operation;
an unknown type and text that is not JSON are skipped without a word. A
second connection_init runs on_ws_connect again and starts a second keep-alive
task, which outlives the socket.

The protocol answers a message it cannot take with an error for its
operation, or with connection_error when there is no usable id (it does so
for "parsing errors of the message"), and the socket goes on. This handler
checks each frame before Strawberry's dispatch sees it, and answers so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    CompleteMessage,
    ConnectionErrorMessage,
    ErrorMessage,
    OperationMessage,
    StartMessage,
)
from strawberry.types.execution import PreExecutionError

from resolvers.live.frames import as_message, is_operation_id, operation_problem
from resolvers.live.sharing import streaming_to
from resolvers.live.websocket_adapter import FittingCloseReasonWebSocketAdapter

CLIENT_TYPES = ("connection_init", "connection_terminate", "start", "stop")


class NotJson:
    """What the socket hands on for a text frame that is not JSON."""


NOT_JSON = NotJson()


def message_problem(frame: object) -> str | None:
    """Why a frame is not a message a graphql-ws client may send (None: it is)."""
    if frame is NOT_JSON:
        return "Message must be valid JSON"
    parsed = as_message(frame)
    if isinstance(parsed, str):
        return parsed
    message, kind = parsed
    if kind not in CLIENT_TYPES:
        return "Unknown message type"
    if kind in ("start", "stop") and not is_operation_id(message.get("id")):
        return f"'{kind}' needs a string 'id'"
    if kind == "start":
        return operation_problem(kind, message.get("payload"), extensions=False)
    return None


class NotJsonAsFrame(AsyncWebSocketAdapter):
    """A socket that yields NOT_JSON for text that is not JSON, where Strawberry's skips it."""

    def __init__(self, websocket: AsyncWebSocketAdapter) -> None:
        super().__init__(websocket.view)
        self.websocket = websocket

    async def iter_json(
        self,
        *,
        ignore_parsing_errors: bool = False,  # noqa: ARG002 (never ignored: that is the point)
    ) -> AsyncGenerator[object, None]:
        while True:
            try:
                # Once it has raised, a frame iterator is spent: start another.
                async with aclosing(self.websocket.iter_json()) as frames:
                    async for frame in frames:
                        yield frame
                return
            except NonJsonMessageReceived:
                yield NOT_JSON

    async def send_json(self, message: Mapping[str, object]) -> None:
        await self.websocket.send_json(message)

    async def send_text(self, text: str) -> None:
        websocket = self.websocket
        if not isinstance(websocket, FittingCloseReasonWebSocketAdapter):
            raise TypeError("pre-encoded frames need the ASGI socket")
        await websocket.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code, reason)


class AnyOperationGraphQLWSHandler(BaseGraphQLWSHandler[Any, Any]):
    async def handle(self) -> None:
        # Strawberry's handle() has the socket skip text that is not JSON; the
        # protocol answers it with connection_error, so it is handed on instead.
        self.websocket = NotJsonAsFrame(self.websocket)
        await super().handle()

    async def handle_message(self, message: OperationMessage) -> None:
        frame: object = message  # as decoded from JSON, whatever the annotation says
        problem = message_problem(frame)
        if (
            problem is None
            and message["type"] == "connection_init"
            and self.connection_acknowledged
        ):
            # Strawberry would run on_ws_connect again and start a second
            # keep-alive task, which nothing stops when the socket closes.
            problem = "Too many initialisation requests"
        if problem is None:
            await super().handle_message(message)
            if message["type"] == "start":
                # Strawberry's read loop holds the last frame until the next
                # one comes, for a subscription its whole life.
                message.clear()  # type: ignore[attr-defined]  # (a dict, whatever the TypedDict)
            return
        operation_id = frame.get("id") if isinstance(frame, dict) else None
        if isinstance(operation_id, str):
            await self.send_message(
                ErrorMessage(type="error", id=operation_id, payload={"message": problem})
            )
        else:
            await self.send_message(
                ConnectionErrorMessage(type="connection_error", payload={"message": problem})
            )

    async def handle_start(self, message: StartMessage) -> None:
        # The operation's task, created in here, writes its results straight
        # to the socket when they are rendered once for many (live/sharing.py).
        with streaming_to(self.websocket, frame_type="data", message=message, adopter=self):
            await super().handle_start(message)

    # sharing.Adopter: a live stream's own task becomes the operation's.

    def adopt(self, operation_id: str, parent: asyncio.Task[Any], task: asyncio.Task[None]) -> bool:
        if self.tasks.get(operation_id) is not parent:
            return False
        # A stop, or the socket's end, now cancels the stream's task; the
        # operation's own task ends without a word (handle_async_results).
        self.tasks[operation_id] = task
        return True

    async def ended(self, operation_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(operation_id) is task:
            del self.tasks[operation_id]
            await self.send_message(CompleteMessage(type="complete", id=operation_id))

    async def stopped(self, operation_id: str) -> None:
        # As handle_async_results answers a stop.
        await self.send_message(CompleteMessage(type="complete", id=operation_id))

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        # Kept in step with BaseGraphQLWSHandler.handle_async_results, but for
        # the call to stream() where it calls subscribe().
        result_source: object = None
        try:
            result_source = await self.schema.stream(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
            )
            self.subscriptions[operation_id] = result_source
            is_first_result = True
            async for result in result_source:
                if is_first_result and isinstance(result, PreExecutionError):
                    # A PreExecutionError always carries its errors; should one
                    # come without, the client still learns the operation failed.
                    error = (
                        result.errors[0].formatted
                        if result.errors
                        else {"message": "The operation could not be run."}
                    )
                    await self.send_message(
                        ErrorMessage(type="error", id=operation_id, payload=error)
                    )
                    return
                await self.send_data_message(result, operation_id)  # type: ignore[arg-type]  # queries yield plain ExecutionResults
                is_first_result = False
            if self.tasks.get(operation_id) is asyncio.current_task():
                await self.send_message(CompleteMessage(type="complete", id=operation_id))
            # else the stream went on in a task of its own (adopt), which ends it
        except asyncio.CancelledError:
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        finally:
            if result_source is not None and self.subscriptions.get(operation_id) is result_source:
                del self.subscriptions[operation_id]
            if self.tasks.get(operation_id) is asyncio.current_task():
                del self.tasks[operation_id]

"""The GraphQL route: Strawberry's router, with the gaps of its HTTP and WebSocket handling closed.

- HTTP: every request it refuses is answered in GraphQL's JSON error shape
  with a 4xx (Strawberry answers some in plain text, some with a 500);
  subscriptions are for WebSockets only.
- WebSocket: malformed frames get each protocol's answer
  (``live/transport_ws_protocol.py``, ``live/legacy_protocol.py``), close
  reasons always fit a close frame, and a socket is authenticated once, at
  connection_init (``live/connections.py``).
- The context of each request or socket (``get_context``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, overload

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from auth.tokens import bearer_token
from resolvers.context import Context
from resolvers.live import connections
from resolvers.live.legacy_protocol import AnyOperationGraphQLWSHandler
from resolvers.live.transport_ws_protocol import ValidatingGraphQLTransportWSHandler
from resolvers.live.websocket_adapter import FittingCloseReasonWebSocketAdapter
from schema.errors import no_such_operation

# Where ParleyApp leaves a GraphQL POST's sub-response, in the request's scope.
SUB_RESPONSE = "parley.sub_response"


class ParleyRouter(GraphQLRouter[Context, None]):
    """Strawberry's router, answering every request it refuses in GraphQL's error shape.

    Strawberry refuses a request it cannot take (not JSON, a mutation over
    GET, ...) with a plain-text HTTPException, and a few more (a body that
    is not UTF-8, JSON that is no object) with a plain 500. Here the body is
    checked before anything runs, and every refusal is a JSON
    ``{"errors": [{"message", "extensions": {"code"}}]}`` with its 4xx status.
    What is wrong inside a well-formed request (its variables, its document)
    is answered by the schema as a GraphQL error, as over a WebSocket.
    """

    graphql_ws_handler_class = AnyOperationGraphQLWSHandler
    graphql_transport_ws_handler_class = ValidatingGraphQLTransportWSHandler
    websocket_adapter_class = FittingCloseReasonWebSocketAdapter

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await connections.accept(context)
        return UnsetType()

    @overload
    async def run(
        self, request: Request, context: Context = ..., root_value: None = ...
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = ..., root_value: None = ...
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        try:
            if isinstance(request, Request) and _is_json_post(request):
                return await self._run_json_post(request, context)
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            # The routes would answer this in plain text.
            return self.request_error(refused.status_code, refused.reason)

    async def _run_json_post(self, request: Request, context: Context) -> Response:
        """AsyncBaseHTTPView.run's steps for the one request most clients send.

        A POST of a JSON body: no GraphiQL page, no batch (parse_http_body
        refuses one), no streaming transport (none is enabled), so the result
        is one ExecutionResult. Strawberry's run asks all of that again of
        every request, the last with an isinstance against a runtime-checkable
        Protocol, which walks the protocol's attributes (with the rest, some
        15 µs of a 120 µs ``{ __typename }``).
        """
        sub_response = await self.get_sub_response(request)
        if context is UNSET:
            context = await self.get_context(request, response=sub_response)
        adapter = self.request_adapter_class(request)
        request_data = await self.parse_http_body(adapter)
        assert isinstance(request_data, GraphQLRequestData)
        result = await self.execute_single(
            request, adapter, sub_response, context, None, request_data
        )
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data, sub_response)

    async def get_sub_response(self, request: Request) -> Response:
        """The request's own sub-response (ParleyApp's POSTs), else Strawberry's."""
        own = request.scope.get(SUB_RESPONSE)
        if isinstance(own, Response):
            return own
        return await super().get_sub_response(request)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Strawberry's FastAPI response, its JSON encoded with orjson.

        The same JSON, written in UTF-8 rather than with escapes, some ten times
        faster (a 50-message history page is 20 KB of it). What orjson refuses
        (a lone surrogate quoted from a client, an integer past 64 bits) goes
        through json.dumps as before. WebSocket frames keep Strawberry's
        encode_json: they must stay text.
        """
        try:
            body: bytes | str = orjson.dumps(response_data)
        except TypeError:  # orjson.JSONEncodeError
            body = self.encode_json(response_data)
        response = Response(
            body, media_type="application/json", status_code=sub_response.status_code or 200
        )
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    def request_error(self, status_code: int, message: str) -> Response:
        body = {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}
        # encode_json escapes what is not ASCII, so no message can fail to encode.
        return Response(self.encode_json(body), status_code, media_type="application/json")

    def decode_json(self, data: str | bytes) -> object:
        """JSON that cannot be read as such is a JSON error, for HTTP and WebSocket alike.

        json.loads also raises ValueError for integers of more than 4300
        digits and RecursionError for deep nesting; uncaught, those are a 500
        over HTTP and a crashed socket.
        """
        try:
            return super().decode_json(data)
        except (ValueError, RecursionError) as error:
            if isinstance(error, json.JSONDecodeError):
                raise
            raise json.JSONDecodeError(f"unreadable JSON ({type(error).__name__})", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        # Bytes are a body; text is a GET parameter (variables, extensions).
        where = "The request body" if isinstance(data, bytes) else "A query parameter"
        if isinstance(data, bytes):
            # JSON travels as UTF-8 (RFC 8259, GraphQL over HTTP); json.loads
            # would guess UTF-16 too, and crash on bytes that are neither.
            try:
                data = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise HTTPException(400, f"{where} is not UTF-8-encoded JSON.") from None
        try:
            return self.decode_json(data)
        except json.JSONDecodeError:
            raise HTTPException(400, f"{where} is not valid JSON.") from None

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        content_type = _media_type(request.content_type or "")
        if request.method != "POST" or "application/json" not in content_type:
            # GET parameters are text and strings by construction; other
            # bodies Strawberry refuses.
            return await super().parse_http_body(request)
        body = self.parse_json(await request.get_body())
        if not isinstance(body, dict):
            # A list would be a batch, which this server does not take.
            raise HTTPException(
                400,
                'The request body must be a JSON object: {"query": ..., "variables": {...}, '
                '"operationName": ...}.',
            )
        for key, kinds, what in _REQUEST_FIELDS:
            if not isinstance(body.get(key), kinds):
                raise HTTPException(400, f"{key} must be {what}, if provided.")
        return GraphQLRequestData(
            query=body.get("query"),
            variables=body.get("variables"),
            operation_name=body.get("operationName"),
            extensions=body.get("extensions"),
        )

    async def execute_single(
        self,
        request: Request,  # noqa: ARG002 (Strawberry's signature)
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,  # noqa: ARG002 (likewise)
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Kept in step with AsyncBaseHTTPView.execute_single, but for two answers.

        Strawberry lets a subscription through a plain POST or GET (for
        streaming transports this router does not enable), runs its field as
        a query, and the client gets a masked "cannot return null".
        Subscriptions are served over WebSocket; here they are a 400 before
        anything runs. And an operationName that names no operation is
        answered as a GraphQL error, as over a WebSocket, not a plain 400.
        """
        method = request_adapter.method
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        if method == "GET" and not self.allow_queries_via_get:
            allowed -= {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            # Raised past the extensions, so ErrorCodes never sees it here.
            return ExecutionResult(data=None, errors=[no_such_operation(error.operation_name)])
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(
                    400,
                    "Subscriptions are not served over HTTP: open a WebSocket on this path "
                    "(graphql-transport-ws or graphql-ws) and subscribe there.",
                ) from None
            raise HTTPException(400, error.as_http_error_reason(method)) from None
        except MissingQueryError:
            raise HTTPException(400, "The request has no GraphQL document (query).") from None


def _is_json_post(request: Request) -> bool:
    if request.method != "POST":
        return False
    return "application/json" in _media_type(request.headers.get("content-type") or "")


@lru_cache(maxsize=64)
def _media_type(content_type: str) -> str:
    """The media type of a Content-Type header, as Strawberry reads it.

    parse_content_type builds an email.message.Message to read it, some 5 µs
    a request; clients send the same few headers over and over.
    """
    media_type, _ = parse_content_type(content_type)
    return media_type


# What a GraphQL-over-HTTP request body may hold, beyond which nothing runs.
_REQUEST_FIELDS: list[tuple[str, type | tuple[type, ...], str]] = [
    ("query", (str, type(None)), "a string"),
    ("variables", (dict, type(None)), "an object"),
    ("operationName", (str, type(None)), "a string"),
    ("extensions", (dict, type(None)), "an object"),
]


class ParleyApp(FastAPI):
    """The FastAPI app, with GraphQL handed straight to the router.

    An open socket keeps every coroutine between the ASGI server and the
    handler alive for as long as it lasts: Starlette's middleware stack, the
    routing, FastAPI's dependency solving (and what it solved). None of it
    does anything for a WebSocket (CORS and error pages are HTTP's), so the
    GraphQL socket skips it: per idle socket, that is most of what the
    framework costs.

    A GraphQL POST goes through the same user middleware (CORS) and error
    page as every request, but not through FastAPI's routing and dependency
    solving, which cost about as much as a small operation itself; it gets
    the same context (``get_context``) and the same sub-response Strawberry's
    FastAPI endpoint would give it. GET (queries and GraphiQL), preflights
    and every other path take the full stack.
    """

    graphql_path = "/graphql"
    graphql_router: ParleyRouter | None = None
    _graphql_post_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self.graphql_router
        if router is not None and scope["type"] in ("websocket", "http"):
            if scope["path"] == self.graphql_path:
                if scope["type"] == "websocket":
                    scope["app"] = self
                    websocket = WebSocket(scope, receive, send)
                    async with _open_context(websocket) as context:
                        await router.run(websocket, context=context, root_value=None)
                    return
                if scope["method"] == "POST":
                    scope["app"] = self
                    await self._post_stack(router)(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    def _post_stack(self, router: ParleyRouter) -> ASGIApp:
        stack = self._graphql_post_stack
        if stack is None:

            async def graphql_post(scope: Scope, receive: Receive, send: Send) -> None:
                request = Request(scope, receive, send)
                async with _open_context(request) as context:
                    # As FastAPI makes the Response a Strawberry endpoint declares.
                    sub_response = Response()
                    del sub_response.headers["content-length"]
                    sub_response.status_code = None  # type: ignore[assignment]
                    context.response = sub_response
                    scope[SUB_RESPONSE] = sub_response
                    response = await router.run(request, context=context, root_value=None)
                    await response(scope, receive, send)

            # Starlette's order: its error page outermost, then the user middleware.
            stack = graphql_post
            for cls, args, kwargs in reversed(self.user_middleware):
                stack = cls(stack, *args, **kwargs)
            stack = self._graphql_post_stack = ServerErrorMiddleware(stack, debug=self.debug)
        return stack


async def get_context(connection: HTTPConnection) -> AsyncIterator[Context]:
    context = Context(
        services=connection.app.state.services,
        access_token=bearer_token(connection.headers.get("authorization")),
    )
    # As Strawberry's FastAPI dependency would (ParleyApp serves sockets without it).
    if isinstance(connection, (Request, WebSocket)):
        context.request = connection
    try:
        yield context
    finally:
        # For a WebSocket this runs when it closes.
        await connections.release(context)


# get_context as a context manager, for the routes ParleyApp serves itself.
# Made once: asynccontextmanager wraps (functools.update_wrapper) at every call.
_open_context = asynccontextmanager(get_context)

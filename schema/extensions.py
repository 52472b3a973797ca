"""Schema extensions: per-operation scope, and error codes with masking."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, runtime_checkable

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from resolvers.context import Context
from schema.errors import ParleyError

logger = logging.getLogger("parley.errors")

MASKED_MESSAGE = "Unexpected error."


@runtime_checkable
class _ResultWithErrors(Protocol):
    errors: list[GraphQLError] | None


class OperationScope(SchemaExtension):
    """Fresh loaders and session per operation; the session is closed when it ends.

    This covers HTTP requests and every operation on a long-lived WebSocket alike.
    """

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            yield
            return
        operation = context.begin_operation()
        try:
            yield
        finally:
            await context.end_operation(operation)


class OperationNameRequired(SchemaExtension):
    """A document of several operations must say which to run (GraphQL spec, 6.1).

    Without this, the first one would run, which is never what a client meant.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # operation_name falls back to the first operation's name; only the
        # name the client sent tells whether it chose one.
        chosen = getattr(context, "_provided_operation_name", None)
        if document is not None and chosen is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                # Set before validation runs, which then reports this alone.
                context.pre_execution_errors = [
                    GraphQLError(
                        "Must provide operationName when the document has several operations."
                    )
                ]
        yield


class ErrorCodes(SchemaExtension):
    """Give every error an ``extensions.code``; mask the unexpected ones.

    Domain errors (``ParleyError``) go out as raised. Parse and validation
    errors keep their message (it is about the client's document) and get
    the codes Apollo clients know. Anything else is logged with the request
    id and replaced by a generic INTERNAL_SERVER_ERROR.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        self._process(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result sent over a WebSocket, before it is sent."""
        self._process(result)
        yield None

    def _process(self, result: object) -> None:
        if isinstance(result, _ResultWithErrors) and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, ParleyError):
            if error.extensions and error.extensions.get("code"):
                return error
            return GraphQLError(
                original.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions=original.extensions,
            )
        if isinstance(error, ParleyError):
            return error
        if original is None or (error.path is None and isinstance(original, GraphQLError)):
            # No resolver ran: the document or its variables are at fault
            # (graphql-core keeps the coercion failure as original_error).
            if error.extensions and error.extensions.get("code"):
                return error
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={**(error.extensions or {}), "code": _client_error_code(error)},
            )
        request_id = getattr(self.execution_context.context, "request_id", None)
        logger.error(
            "unexpected error (request %s) at %s",
            request_id,
            error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            MASKED_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


def _client_error_code(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$") or "got invalid value" in message:
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"

"""Schema extensions: a scope per operation, error codes with masking, operationName."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import MaskErrors, SchemaExtension

from resolvers.context import Context
from schema.errors import ParleyError

logger = logging.getLogger("parley.errors")

MASKED_MESSAGE = "Unexpected error."


class OpenOperationScope(SchemaExtension):
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


class ErrorCodes(MaskErrors):
    """Give every error an ``extensions.code``; mask the unexpected ones.

    Strawberry's MaskErrors decides which errors to touch (here: every one
    that has no code yet) and does so for streamed results too; this only
    says what each becomes. Domain errors (``ParleyError``) go out as raised.
    Parse and validation errors keep their message (it is about the client's
    document) and get the codes Apollo clients know. Anything else is logged
    with the request id and replaced by a generic INTERNAL_SERVER_ERROR.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=_lacks_code, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, ParleyError):
            extensions = original.extensions
            message = original.message
        elif original is None or (error.path is None and isinstance(original, GraphQLError)):
            # No resolver ran: the document or its variables are at fault
            # (graphql-core keeps the coercion failure as original_error).
            extensions = {**(error.extensions or {}), "code": _client_error_code(error)}
            message = error.message
        else:
            request_id = getattr(self.execution_context.context, "request_id", None)
            logger.error(
                "unexpected error (request %s) at %s",
                request_id,
                error.path,
                exc_info=(type(original), original, original.__traceback__),
            )
            extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
            message = self.error_message
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )


def _lacks_code(error: GraphQLError) -> bool:
    return not (error.extensions and error.extensions.get("code"))


def _client_error_code(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$") or "got invalid value" in message:
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"

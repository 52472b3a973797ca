"""The Schema object: roots, extra types and extensions."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.direct import call_resolvers_directly
from schema.events import EVENT_TYPES
from schema.execution import AcyclicExecutionContext
from schema.extensions import Documents, ErrorCodes, OpenOperationScope
from schema.mutation import Mutation
from schema.query import Query
from schema.stages import ExtensionsRunner
from schema.subscription import Subscription
from schema.types import DirectConversation, Group


class ParleySchema(strawberry.Schema):
    def process_errors(
        self,
        errors: list[GraphQLError],  # noqa: ARG002 (Strawberry's signature)
        execution_context: ExecutionContext | None = None,  # noqa: ARG002 (likewise)
    ) -> None:
        # ErrorCodes logs what is unexpected (with the request id); domain and
        # validation errors are the client's business, not the server log's.
        return None

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> ExtensionsRunner:
        return ExtensionsRunner(execution_context, extensions)


schema = ParleySchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Group, DirectConversation, *EVENT_TYPES],
    extensions=[
        OpenOperationScope,
        ErrorCodes,
        Documents,
    ],
    config=StrawberryConfig(auto_camel_case=True),
    execution_context_class=AcyclicExecutionContext,
)
# Resolvers that take only self and info are called without Strawberry's
# per-call wrapping (schema/direct.py).
DIRECT_RESOLVERS = call_resolvers_directly(schema)

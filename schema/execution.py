"""The executor: Strawberry's, without the reference cycle graphql-core builds into it,
and with a short way through plain leaf fields."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import to_nodes
from graphql.pyutils import Path
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# (field, its resolve, leaf type, nullable) of a plain leaf field, by schema and (type, field);
# None for any other field.
_PlainLeaf = tuple[GraphQLField, Callable[[Any], Any], GraphQLLeafType, bool]
_plain_leaves: weakref.WeakKeyDictionary[
    GraphQLSchema, dict[tuple[str, str], _PlainLeaf | None]
] = weakref.WeakKeyDictionary()


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, freed by reference counting when the operation ends.

    graphql-core's executor keeps ``async_helpers`` made of its own bound
    methods, so every executor is a reference cycle, and so is everything it
    holds: the operation's context (ours, with its HTTP request and response),
    its variables, the fields it collected. Only the cyclic collector frees
    those, and what survives a young collection only on a full one, which a
    server that has fallen idle does not run. Here the helpers reach the
    executor weakly: they do the same, and the executor lives while its
    operation runs, which is while any resolver can call them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: _running(executor).gather_async_work(values),
            track=lambda values: _running(executor).track_async_work(values),
        )
        found = _plain_leaves.get(self.schema)
        if found is None:
            found = _plain_leaves[self.schema] = {}
        self._plain_leaves = found
        # No extension wraps the resolvers (Strawberry's MiddlewareManager has
        # none unless an extension implements ``resolve``).
        manager = self.middleware_manager
        self._unwrapped = manager is None or not manager.middlewares

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A plain leaf field (Strawberry's attribute read, a scalar or enum) done at once.

        Profile (py-spy, the history page of 50 messages with authors,
        replies and reactions, ~1,150 fields): most fields are attributes
        Strawberry reads with getattr, yet each one built a resolve info,
        went through the resolver wrappers and the completion's type
        dispatch. Here such a field is read and coerced as graphql-core
        would. Any other field takes the full way, and so does the value of
        a plain one that is not plainly valid (a null for a non-null field,
        an exception, an awaitable, a failed coercion), without being read
        again.
        """
        node = field_details_list[0].node
        if self._unwrapped and not node.arguments:
            key = (parent_type.name, node.name.value)
            try:
                plain = self._plain_leaves[key]
            except KeyError:
                plain = self._plain_leaves[key] = _plain_leaf(self.schema, parent_type, key[1])
            if plain is not None:
                return self._plain(
                    plain, parent_type, source, field_details_list, path, position_context
                )
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _plain(
        self,
        plain: _PlainLeaf,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        field, resolve, leaf, nullable = plain
        try:
            value = resolve(source)
        except Exception as raw_error:
            self.handle_field_error(raw_error, field.type, field_details_list, path)
            return None
        if value is None or value is Undefined:
            if nullable:
                return None
        elif not isinstance(value, Exception) and not self.is_awaitable(value):
            with suppress(Exception):  # completed the full way below, which reports it
                return self.complete_leaf_value(leaf, value)
        # The full way, with the value read (a resolver is called once).
        info = self.build_resolve_info(field, to_nodes(field_details_list), parent_type, path)
        if self.is_awaitable(value):
            return self.complete_awaitable_value(
                field.type, field_details_list, info, path, value, position_context
            )
        try:
            return self.complete_value(
                field.type, field_details_list, info, path, value, position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, field.type, field_details_list, path)
            return None


def _plain_leaf(
    schema: GraphQLSchema, parent_type: GraphQLObjectType, field_name: str
) -> _PlainLeaf | None:
    """The field and its leaf type if Strawberry resolves it by reading an attribute."""
    field = schema.get_field(parent_type, field_name)
    resolve = field.resolve if field is not None else None
    if field is None or resolve is None or field.args or not getattr(resolve, "_is_default", False):
        return None
    leaf = get_nullable_type(field.type)
    if not is_leaf_type(leaf):
        return None
    return field, resolve, leaf, not is_non_null_type(field.type)


def _running(
    executor: weakref.ref[AcyclicExecutionContext],
) -> AcyclicExecutionContext:
    found = executor()
    if found is None:
        raise RuntimeError("the operation has ended")
    return found

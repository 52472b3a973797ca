"""The executor: Strawberry's, without the reference cycle graphql-core builds into it,
and with a short way through plain leaf fields."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from operator import attrgetter
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
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import Path, gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# (field, what reads its value from the source, leaf type, nullable) of a plain
# leaf field, by schema and (type, field); None for any other field.
_PlainLeaf = tuple[GraphQLField, Callable[[Any], Any], GraphQLLeafType, bool]
_plain_leaves: weakref.WeakKeyDictionary[
    GraphQLSchema, dict[tuple[str, str], _PlainLeaf | None]
] = weakref.WeakKeyDictionary()
# Values that are plainly no exception and not awaitable, by their exact type.
_PLAIN_VALUES = frozenset({str, int, float, bool, datetime})


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

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        """graphql-core's execute_fields, with a plain leaf field done in the loop.

        Profile (py-spy, the history page of 50 messages with authors,
        replies and reactions, ~960 fields of which ~690 plain leaves): the
        loop, the field's Path and the call into execute_field were about as
        much as reading and coercing the value itself. A plain leaf whose
        value is a str, int, float, bool or datetime, or a null where null
        is allowed, is read and coerced here; every other field, and every
        other value, takes execute_field (``_plain`` for a plain leaf, with
        the value already read), with its Path.
        """
        if not self._unwrapped:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        complete_leaf_value = self.complete_leaf_value
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                plain = self._plain_leaf(parent_type, field_details_list)
                if plain is not None:
                    _, read, leaf, nullable = plain
                    raised = None
                    try:
                        value = read(source_value)
                    except Exception as error:  # reported the full way below
                        value, raised = None, error
                    else:
                        if value is None:
                            if nullable:
                                results[response_name] = None
                                continue
                        elif type(value) in _PLAIN_VALUES:
                            try:
                                results[response_name] = complete_leaf_value(leaf, value)
                            except Exception:  # reported the full way below
                                pass
                            else:
                                continue
                    result = self._plain(
                        plain,
                        parent_type,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                        value,
                        raised,
                    )
                else:
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:  # as graphql-core's
            if len(awaitable_fields) == 1:
                name = awaitable_fields[0]
                results[name] = await results[name]
            else:
                awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A plain leaf field (Strawberry's attribute read, a scalar or enum) done at once.

        Profile (py-spy, the history page): most fields are attributes
        Strawberry reads with getattr, yet each one built a resolve info,
        went through the resolver wrappers and the completion's type
        dispatch. Here such a field is read and coerced as graphql-core
        would. Any other field takes the full way, and so does the value of
        a plain one that is not plainly valid (a null for a non-null field,
        an exception, an awaitable, a failed coercion), without being read
        again.
        """
        plain = self._plain_leaf(parent_type, field_details_list) if self._unwrapped else None
        if plain is None:
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        value, raised = None, None
        try:
            value = plain[1](source)
        except Exception as error:
            raised = error
        return self._plain(
            plain, parent_type, field_details_list, path, position_context, value, raised
        )

    def _plain_leaf(
        self, parent_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> _PlainLeaf | None:
        node = field_details_list[0].node
        if node.arguments:
            return None
        key = (parent_type.name, node.name.value)
        try:
            return self._plain_leaves[key]
        except KeyError:
            found = self._plain_leaves[key] = _plain_leaf(self.schema, parent_type, key[1])
            return found

    def _plain(
        self,
        plain: _PlainLeaf,
        parent_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
        value: Any,
        raised: Exception | None,
    ) -> Any:
        """A plain leaf's value (or what reading it raised), completed as graphql-core would."""
        field, _, leaf, nullable = plain
        if raised is not None:
            self.handle_field_error(raised, field.type, field_details_list, path)
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
    # Strawberry marks a field without a resolver as default-resolved even when
    # field extensions (permission classes) or exception handlers wrap it; only
    # a basic field's resolve is field.get_result(source), which is
    # default_resolver(source, python_name): for getattr, an attrgetter.
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    handlers: tuple[object, ...] = getattr(strawberry_schema, "exception_handlers", ())
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field or handlers:
        return None
    read: Callable[[Any], Any] = resolve
    if (
        type(definition).get_result is StrawberryField.get_result
        and definition.default_resolver is getattr
        and isinstance(definition.python_name, str)
    ):
        read = attrgetter(definition.python_name)
    return field, read, leaf, not is_non_null_type(field.type)


def _running(
    executor: weakref.ref[AcyclicExecutionContext],
) -> AcyclicExecutionContext:
    found = executor()
    if found is None:
        raise RuntimeError("the operation has ended")
    return found

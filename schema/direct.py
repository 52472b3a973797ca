"""Resolvers of the form ``def field(self, info)``, called straight, not through Strawberry's.

For every call of a resolver, Strawberry's resolve builds its Info, converts
the (absent) arguments, looks for field extensions and exception handlers
and for the resolver's reserved parameters (self, root, parent, info), and
goes through five nested functions before it calls the resolver. A field
whose resolver takes exactly ``self`` and ``info``, with no arguments, no
field extensions (permission classes are ones) and no exception handler in
the schema, comes to ``resolver(source, info=Info(...))`` every time: that is
what its resolve does here. Any other field keeps Strawberry's.

Profile (py-spy, the in-process history page: ~220 such fields, the
author, replyTo and reactions of each message): Strawberry's wrapping of
those calls was some 12% of the page, about as much as the resolvers'
own work.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

Resolve = Callable[..., Any]


def call_resolvers_directly(schema: strawberry.Schema) -> list[str]:
    """Give each field that qualifies a resolve calling its resolver straight; their names."""
    if schema.exception_handlers:
        return []
    subscription = schema._schema.subscription_type  # noqa: SLF001 (Strawberry's GraphQLSchema)
    done: list[str] = []
    for graphql_type in schema._schema.type_map.values():  # noqa: SLF001
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type is subscription:
            continue
        if graphql_type.name.startswith("__"):
            continue
        for name, field in graphql_type.fields.items():
            resolve = _direct(schema, field)
            if resolve is not None:
                field.resolve = resolve
                done.append(f"{graphql_type.name}.{name}")
    return done


def _direct(schema: strawberry.Schema, field: GraphQLField) -> Resolve | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or field.args or field.subscribe:
        return None
    resolver = definition.base_resolver
    if resolver is None or definition.extensions or definition.is_subscription:
        return None
    function = resolver.wrapped_func
    if not inspect.isfunction(function) or resolver.is_async or resolver.arguments:
        return None
    parameters = list(inspect.signature(function).parameters.values())
    self_parameter, info_parameter = resolver.self_parameter, resolver.info_parameter
    if (
        self_parameter is None
        or info_parameter is None
        or len(parameters) != 2  # self and info, nothing else
        or parameters[0].name != self_parameter.name
        or parameters[1].name != info_parameter.name
        or info_parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD
    ):
        return None
    info_class = schema.config.info_class

    def resolve(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        # Strawberry passes the source as self and the Info by keyword.
        return function(source, info_class(_raw_info=info, _field=definition))

    return resolve

"""The executor: Strawberry's, without the reference cycle graphql-core builds into it."""

from __future__ import annotations

import weakref
from typing import Any

from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


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


def _running(
    executor: weakref.ref[AcyclicExecutionContext],
) -> AcyclicExecutionContext:
    found = executor()
    if found is None:
        raise RuntimeError("the operation has ended")
    return found

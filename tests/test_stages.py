"""Parley's extension runner (schema/stages.py) runs every hook as Strawberry's own:
the same hooks, in the same order, with the same results and the same failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema import stages
from schema.schema import schema as parley_schema
from schema.stages import ExtensionsRunner

log: list[str] = []


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        log.append("resolve")
        return "world"

    @strawberry.field
    def broken(self) -> str:
        raise ValueError("broken")


class Generators(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        log.append("generators operation in")
        yield
        log.append(f"generators operation out ({self.execution_context.result is not None})")

    def on_parse(self) -> Iterator[None]:
        log.append("generators parse in")
        yield
        log.append("generators parse out")

    async def on_validate(self) -> AsyncIterator[None]:
        log.append("generators validate in")
        yield
        log.append("generators validate out")


class AsyncOperation(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        log.append("async operation in")
        try:
            yield
        finally:
            log.append("async operation out")

    def get_results(self) -> dict[str, Any]:
        return {"asyncOperation": len(log)}


class PlainExecute(SchemaExtension):
    """A hook that is a plain function: its stage is left to Strawberry."""

    def on_execute(self) -> None:  # type: ignore[override]
        log.append("plain execute")


class FailsValidation(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        log.append("fails validate in")
        raise RuntimeError("no validation today")
        yield  # pragma: no cover


class Swallows(SchemaExtension):
    """Swallows what its operation raises: the exception still carries on, in Strawberry."""

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except RuntimeError:
            log.append("swallowed")


class ParleyRunner(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> ExtensionsRunner:
        return ExtensionsRunner(execution_context, extensions)


async def run(schema_class: type[strawberry.Schema], extensions: list[Any], query: str) -> Any:
    log.clear()
    schema = schema_class(query=Query, extensions=extensions)
    try:
        result = await schema.execute(query)
    except Exception as error:  # compared, not handled
        return ("raised", type(error), str(error), list(log))
    errors = [error.formatted for error in result.errors or []]
    return (result.data, errors, result.extensions, list(log))


@pytest.mark.parametrize(
    "extensions",
    [
        [Generators, AsyncOperation],
        [AsyncOperation, Generators, PlainExecute],
        [Generators, FailsValidation, AsyncOperation],
        [Swallows, FailsValidation],
        [],
    ],
    ids=["generators", "plain-function-hook", "hook-raises", "hook-swallows", "none"],
)
@pytest.mark.parametrize("query", ["{ hello }", "{ broken }", "{ nope }", "{"])
async def test_runs_hooks_as_strawberry(extensions: list[Any], query: str) -> None:
    expected = await run(strawberry.Schema, extensions, query)
    assert await run(ParleyRunner, extensions, query) == expected


def test_sync_execution_as_strawberry() -> None:
    def run_sync(schema_class: type[strawberry.Schema]) -> Any:
        log.clear()
        schema = schema_class(query=Query, extensions=[Generators])
        try:
            schema.execute_sync("{ hello }")
        except RuntimeError as error:
            return str(error), list(log)
        return list(log)

    # The async validate hook cannot run synchronously, in either.
    assert run_sync(ParleyRunner) == run_sync(strawberry.Schema)


async def test_parley_schema_finds_hooks_once() -> None:
    await parley_schema.execute("{ __typename }")
    before = stages._hooks.cache_info()  # noqa: SLF001
    for _ in range(3):
        result = await parley_schema.execute("{ __typename }")
        assert result.data == {"__typename": "Query"}
    after = stages._hooks.cache_info()  # noqa: SLF001
    # Four stages an operation, each answered from the cache.
    assert (after.misses, after.hits) == (before.misses, before.hits + 12)

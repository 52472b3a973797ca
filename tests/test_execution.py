"""Parley's executor (schema/execution.py) answers exactly as Strawberry's own:
its short way through plain leaf fields changes no value, no error, and steps
aside for extensions that wrap resolvers."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import Undefined
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission

from schema.execution import AcyclicExecutionContext


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Thing:
    name: str
    nickname: str | None
    count: int
    color: Color
    at: datetime
    tags: list[str]

    @strawberry.field
    def shout(self, suffix: str = "!") -> str:
        return self.name.upper() + suffix


class Oops(Exception):
    pass


reads: list[str] = []


@strawberry.type
class Odd:
    """Values a plain field may hold that are not plainly valid."""

    error: str | None
    undefined: str | None
    number: int | None

    @property
    def counted(self) -> int:
        reads.append("counted")
        raise Oops("no count")


class Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        return False


@strawberry.type
class Counted:
    counted: int
    # No resolver, but a permission class: not a plain field.
    secret: str | None = strawberry.field(default="hidden", permission_classes=[Deny])


async def _later(value: object) -> object:
    return value


@strawberry.type
class Lazy:
    """Plain fields whose values are awaitables (graphql-core awaits them)."""

    number: int
    missing: int


class LazySource:
    """Served as a Lazy: each value is made when read, so each one read is awaited."""

    @property
    def number(self) -> object:
        return _later(7)

    @property
    def missing(self) -> object:
        return _later(None)


GOOD = Thing(
    name="ann",
    nickname=None,
    count=3,
    color=Color.BLUE,
    at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    tags=["a", "b"],
)
BROKEN = [
    Thing(name=None, nickname="x", count=1, color=Color.RED, at=GOOD.at, tags=[]),  # type: ignore[arg-type]
    Thing(name="b", nickname=None, count="many", color=Color.RED, at=GOOD.at, tags=[]),  # type: ignore[arg-type]
    Thing(name="c", nickname=None, count=2, color="green", at=GOOD.at, tags=[]),  # type: ignore[arg-type]
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return [GOOD, *BROKEN]

    @strawberry.field
    def good(self) -> Thing:
        return GOOD

    @strawberry.field
    def odd(self) -> Odd:
        return Odd(error=Oops("boom"), undefined=Undefined, number=Oops("nan"))  # type: ignore[arg-type]

    @strawberry.field
    def counted(self) -> Counted | None:
        return Odd(error=None, undefined=None, number=None)  # type: ignore[return-value]

    @strawberry.field
    def guarded(self) -> Counted:
        return Counted(counted=1)

    @strawberry.field
    async def later(self) -> list[Thing | None]:
        return [GOOD, *BROKEN]

    @strawberry.field
    def lazy(self) -> Lazy | None:
        return LazySource()  # type: ignore[return-value]


DOCUMENT = """
{
  good { name nickname count color at tags shout(suffix: "?") __typename }
  things { name nickname count color at }
  odd { error undefined number }
  counted { counted }
  guarded { secret }
}
"""


class Upper(SchemaExtension):
    """Wraps every resolver, as a tracing or permission extension would."""

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


def run(*, ours: bool, extensions: list[type[SchemaExtension]] | None = None) -> Any:
    options: dict[str, Any] = {"extensions": extensions or []}
    if ours:
        options["execution_context_class"] = AcyclicExecutionContext
    result = strawberry.Schema(query=Query, **options).execute_sync(DOCUMENT)
    return result.data, [(e.message, e.path) for e in result.errors or []]


def test_values_and_errors_are_strawberrys() -> None:
    data, errors = run(ours=True)
    assert (data, errors) == run(ours=False)
    # the cases the comparison holds: values, a null, and three kinds of failure
    assert data["good"]["nickname"] is None
    assert data["good"]["color"] == "BLUE"
    assert data["odd"] == {"error": None, "undefined": None, "number": None}
    assert data["counted"] is None
    assert data["guarded"] == {"secret": None}  # the permission class ran
    assert len(errors) == 3 + 3 + 1


ASYNC_DOCUMENT = """
{
  later { name nickname count color at tags }
  lazy { number }
  alsoLazy: lazy { number missing }
  odd { error undefined number }
}
"""


async def test_values_and_errors_are_strawberrys_when_awaited() -> None:
    def answer(result: Any) -> Any:
        return result.data, [(e.message, e.path) for e in result.errors or []]

    ours = strawberry.Schema(query=Query, execution_context_class=AcyclicExecutionContext)
    data, errors = answer(await ours.execute(ASYNC_DOCUMENT))
    assert (data, errors) == answer(await strawberry.Schema(query=Query).execute(ASYNC_DOCUMENT))
    assert data["later"][0]["name"] == "ann"
    assert data["lazy"] == {"number": 7}
    assert data["alsoLazy"] is None  # a null awaited for a non-null field
    assert len(errors) == 3 + 2 + 1


def test_a_plain_field_is_read_once_even_when_it_fails() -> None:
    reads.clear()
    run(ours=True)
    assert reads == ["counted"]


@pytest.mark.parametrize("ours", [True, False])
def test_an_extension_that_wraps_resolvers_still_sees_every_field(ours: bool) -> None:
    data, _ = run(ours=ours, extensions=[Upper])
    assert data["good"]["name"] == "ANN"
    assert data["good"]["tags"] == ["a", "b"]  # a list is not a string

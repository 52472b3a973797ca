"""Resolvers called straight (schema/direct.py) answer as through Strawberry's wrappers,
and only the ones of the form ``def field(self, info)`` are."""

# ruff: noqa: ARG002 (resolvers of each form, whether or not they use info)

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission

from schema.direct import call_resolvers_directly
from schema.schema import DIRECT_RESOLVERS
from schema.schema import schema as parley_schema


class Nope(BasePermission):
    message = "nope"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class Broken(Exception):
    pass


@strawberry.type
class Item:
    name: str

    @strawberry.field
    def shout(self, info: strawberry.Info) -> str:
        return f"{self.name.upper()} for {info.context['who']} at {info.path.key}"

    @strawberry.field
    def broken(self, info: strawberry.Info) -> str | None:
        raise Broken(f"{self.name} is broken ({info.field_name})")

    @strawberry.field
    def missing(self, info: strawberry.Info) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    def repeat(self, info: strawberry.Info, times: int = 2) -> str:
        return self.name * times

    @strawberry.field
    async def later(self, info: strawberry.Info) -> str:
        return self.name

    @strawberry.field(permission_classes=[Nope])
    def guarded(self, info: strawberry.Info) -> str | None:
        return "secret"

    @strawberry.field
    def plain(self) -> str:
        return self.name + "!"


@strawberry.type
class Query:
    @strawberry.field
    def items(self, info: strawberry.Info) -> list[Item]:
        return [Item(name="a"), Item(name="b")]


DOCUMENT = """
{
  items {
    name shout broken repeat(times: 3) later guarded plain
    again: shout
  }
}
"""
# A null for a non-null field: null up to the root.
MISSING = "{ items { name missing } }"


async def answer(direct: bool, document: str) -> Any:
    schema = strawberry.Schema(query=Query)
    names = call_resolvers_directly(schema) if direct else []
    result = await schema.execute(document, context_value={"who": "ann"})
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])
    return names, result.data, errors


@pytest.mark.parametrize("document", [DOCUMENT, MISSING])
async def test_answers_as_strawberry(document: str) -> None:
    names, data, errors = await answer(True, document)
    _, expected_data, expected_errors = await answer(False, document)
    assert (data, errors) == (expected_data, expected_errors)
    # Only the resolvers of exactly self and info, with no permission class.
    assert sorted(names) == ["Item.broken", "Item.missing", "Item.shout", "Query.items"]
    if document == MISSING:
        assert data is None
    else:
        assert data is not None
        assert data["items"][1]["shout"] == "B for ann at shout"
        assert data["items"][0]["again"] == "A for ann at again"  # the Info is the field's
        assert len(errors) == 2 + 2  # broken and guarded, on both items


def test_none_with_exception_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = strawberry.Schema(query=Query)
    monkeypatch.setattr(schema, "exception_handlers", (object(),))
    assert call_resolvers_directly(schema) == []


def test_parley_calls_its_relationship_fields_directly() -> None:
    assert {"Message.author", "Message.replyTo", "Message.reactions"} <= set(DIRECT_RESOLVERS)
    field = parley_schema._schema.get_type("Message").fields["author"]  # type: ignore[union-attr]  # noqa: SLF001
    assert field.resolve.__module__ == "schema.direct"

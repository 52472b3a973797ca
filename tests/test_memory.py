"""What an operation holds is freed when it ends, by reference counting alone.

Python's cyclic collector frees reference cycles only now and then, and the
old generation, where a busy server's survivors end up, only on its rare full
passes; between them, and once the server falls idle, for good. An
operation's session, loaders and rows are therefore kept free of reference
cycles, so that a load leaves nothing behind it waiting for the collector.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from strawberry.dataloader import DataLoader, DefaultCache

from resolvers.context import Context, OperationHandle
from schema.schema import schema
from tests.client import User, sign_up
from tests.inprocess import InProcess, in_process
from tests.operations import ADD_REACTION, SEND, create_group, send
from tests.test_statement_count import HISTORY_PAGE


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path) as app:
        yield app


@contextmanager
def held_at_the_end(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[weakref.ref[Any]]]:
    """Weak references to each ending operation's context, scope, loaders, session and rows."""
    held: list[weakref.ref[Any]] = []
    end_operation = Context.end_operation

    async def recording(self: Context, handle: OperationHandle) -> None:
        scope = handle.scope
        loaders = scope.loaders
        held.extend(weakref.ref(o) for o in (self, scope, scope.db, loaders, loaders.messages))
        caching: list[DataLoader[int, Any]] = [loaders.messages, loaders.users, loaders.reactions]
        for loader in caching:
            assert isinstance(loader.cache_map, DefaultCache)
            held.extend(weakref.ref(future) for future in loader.cache_map.cache_map.values())
        if scope.viewer is not None:
            held.append(weakref.ref(scope.viewer))
        await end_operation(self, handle)

    monkeypatch.setattr(Context, "end_operation", recording)
    yield held


@contextmanager
def no_cyclic_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_history_page_leaves_nothing_for_the_cyclic_collector(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a conversation with replies and reactions
    people: list[User] = [await sign_up(app.client) for _ in range(2)]
    group, _ = await create_group(people[0], people[1])
    previous = None
    for i in range(6):
        previous = (await send(people[i % 2], group, f"m{i}", replyToId=previous))["id"]
        await people[(i + 1) % 2].client(ADD_REACTION, id=previous, emoji="👍")
    with held_at_the_end(monkeypatch) as held, no_cyclic_collection():
        # when a page is read, and a message sent (a write renews the loaders)
        page = await people[0].client(HISTORY_PAGE, id=group)
        await send(people[0], group, "and one more")
        for _ in range(3):  # callbacks the event loop still has queued for them
            await asyncio.sleep(0)
        # then everything the operations held is gone already
        assert len(page["conversation"]["messages"]["edges"]) == 7  # and "created the group"
        assert len(held) > 10
        alive = [ref() for ref in held if ref() is not None]
        assert alive == []


async def test_operations_make_no_reference_cycles_at_all(app: InProcess) -> None:
    """Stricter: nothing an operation makes, ours or the libraries', needs the collector."""
    people = [await sign_up(app.client) for _ in range(2)]
    group, _ = await create_group(people[0], people[1])
    previous = None
    for i in range(4):
        previous = (await send(people[i % 2], group, f"m{i}", replyToId=previous))["id"]
        await people[(i + 1) % 2].client(ADD_REACTION, id=previous, emoji="👍")
    operations: list[tuple[str, dict[str, Any]]] = [
        ("{ __typename }", {}),
        (HISTORY_PAGE, {"id": group}),
        (SEND, {"input": {"conversationId": group, "body": "no cycles"}}),
    ]
    for document, variables in operations:
        context = Context(services=app.services, access_token=people[0].token)
        assert not (await schema.execute(document, variables, context)).errors  # warm
        del context
        with no_cyclic_collection():
            context = Context(services=app.services, access_token=people[0].token)
            result = await schema.execute(document, variables, context)
            assert not result.errors, result.errors
            del context, result
            for _ in range(3):
                await asyncio.sleep(0)
            assert gc.collect() == 0, document

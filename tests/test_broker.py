"""The Broker and its backends, against real brokers: the gaps of broadcaster 0.3.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from resolvers.live.backends import NOTIFY_LIMIT
from resolvers.live.broker import Broker
from tests.backends import REDIS_URL, check_redis, create_pg_database, drop_pg_database


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Broker]:
    broker = Broker(url)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.disconnect()


async def _two_listeners_subscribing_at_once_both_receive(broker: Broker) -> None:
    # broadcaster alone: the second subscriber replaces the first one's queue set
    # A channel of this run's own: another run on the same Redis must not reach it.
    channel = f"parley.test.race.{uuid.uuid4().hex}"
    got: list[list[str]] = [[], []]
    ready = asyncio.Event()
    done = asyncio.Event()

    async def listen(index: int) -> None:
        async with broker.listen(channel, got[index].append):
            if index == 1:
                ready.set()
            await done.wait()

    tasks = [asyncio.create_task(listen(0)), asyncio.create_task(listen(1))]
    await ready.wait()
    await asyncio.sleep(0.1)
    for n in range(5):
        await broker.publish(channel, json.dumps({"n": n}))
    for _ in range(100):
        if all(len(g) == 5 for g in got):
            break
        await asyncio.sleep(0.05)
    done.set()
    await asyncio.gather(*tasks)
    assert got[0] == got[1] == [json.dumps({"n": n}) for n in range(5)]


async def test_memory_subscribe_race() -> None:
    async with connected("memory://") as broker:
        await _two_listeners_subscribing_at_once_both_receive(broker)


@pytest.mark.postgres
async def test_redis_delivers_with_the_pinned_redis_py() -> None:
    import redis

    # redis-py 8 makes broadcaster's stock Redis backend deliver nothing.
    assert int(redis.__version__.split(".")[0]) < 8
    check_redis()
    async with connected(REDIS_URL) as broker:
        await _two_listeners_subscribing_at_once_both_receive(broker)


@pytest.mark.postgres
async def test_postgres_concurrent_publishes_and_payload_limit() -> None:
    url = create_pg_database().replace("postgresql+asyncpg://", "postgres://")
    try:
        async with connected(url) as broker:
            got: list[str] = []
            async with broker.listen("parley_test", got.append):
                # the stock backend fails these with "another operation is in progress"
                await asyncio.gather(*(broker.publish("parley_test", str(n)) for n in range(50)))
                for _ in range(100):
                    if len(got) == 50:
                        break
                    await asyncio.sleep(0.05)
                with pytest.raises(ValueError, match="over the limit"):
                    await broker.publish("parley_test", "x" * (NOTIFY_LIMIT + 1))
        assert sorted(got, key=int) == [str(n) for n in range(50)]
    finally:
        drop_pg_database(url.replace("postgres://", "postgresql+asyncpg://"))


@pytest.mark.postgres
async def test_postgres_many_channels_subscribed_at_once_all_deliver() -> None:
    url = create_pg_database().replace("postgresql+asyncpg://", "postgres://")
    try:
        async with connected(url) as broker:
            got: dict[int, list[str]] = {n: [] for n in range(20)}
            async with contextlib.AsyncExitStack() as stack:
                # asyncpg allows one command at a time per connection
                await asyncio.gather(
                    *(
                        stack.enter_async_context(broker.listen(f"parley_many_{n}", got[n].append))
                        for n in range(20)
                    )
                )
                for n in range(20):
                    await broker.publish(f"parley_many_{n}", f"to {n}")
                for _ in range(100):
                    if all(got.values()):
                        break
                    await asyncio.sleep(0.05)
        assert got == {n: [f"to {n}"] for n in range(20)}
    finally:
        drop_pg_database(url.replace("postgres://", "postgresql+asyncpg://"))

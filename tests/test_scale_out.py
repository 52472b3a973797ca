"""Several server processes sharing PostgreSQL and a broker (PARLEY_TEST_BACKEND=postgres)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from resolvers.live.presence import RedisPresence
from tests.backends import REDIS_URL, check_redis, create_pg_database, drop_pg_database
from tests.client import Client, User, sign_up
from tests.operations import EVENTS, SEND, create_group
from tests.server import Server, free_port, running_server
from tests.ws import open_socket

pytestmark = pytest.mark.postgres

PRESENCE = """
subscription($u: [ID!]!) { presence(userIds: $u) { online lastSeenAt user { username } } }
"""
SHARED = {
    "SECRET_KEY": "a-secret-that-all-nodes-share-" + "x" * 16,
    "LIVE_RESYNC_SECONDS": "1",
    "PRESENCE_TTL_SECONDS": "3",
}


@contextmanager
def cluster(tmp: Path, broadcast_url: str | None, nodes: int = 2) -> Iterator[list[Server]]:
    """``nodes`` servers on one fresh database; the broker defaults to that database."""
    database_url = create_pg_database()
    broadcast_url = broadcast_url or database_url.replace("postgresql+asyncpg://", "postgres://")
    try:
        with ExitStack() as stack:
            servers = []
            for n in range(nodes):
                data_dir = tmp / f"node{n}"
                data_dir.mkdir()
                servers.append(
                    stack.enter_context(
                        running_server(
                            data_dir=data_dir,
                            database_url=database_url,
                            broadcast_url=broadcast_url,
                            extra_env=SHARED,
                        )
                    )
                )
            yield servers
    finally:
        drop_pg_database(database_url)


class RedisServer:
    """A redis-server of the test's own, on a spare port, to stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), *options, "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("own redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


async def _receive(url: str, user: User, group: str, after: int, count: int) -> list[int]:
    seqs: list[int] = []
    async with open_socket(url, user.token) as socket:
        operation = await socket.subscribe(EVENTS, {"id": group, "after": after})
        while len(seqs) < count:
            seqs.append((await socket.data(operation, 30))["conversationEvents"]["seq"])
    return seqs


@pytest.mark.parametrize("broker", ["redis", "postgres"])
async def test_subscribe_on_one_node_send_on_the_other(tmp_path: Path, broker: str) -> None:
    if broker == "redis":
        check_redis()
    with cluster(tmp_path, REDIS_URL if broker == "redis" else None) as (one, two):
        # given Bob listening on node one
        client = Client(one.url)
        ann, bob = await sign_up(client), await sign_up(client)
        group, start = await create_group(ann, bob)
        listening = asyncio.create_task(_receive(one.url, bob, group, start, 30))
        # when Ann writes through node two
        through_two = Client(two.url, ann.token)
        for n in range(30):
            await through_two(SEND, input={"conversationId": group, "body": f"n{n}"})
        # then
        seqs = await asyncio.wait_for(listening, 60)
        await client.http.aclose()
        await through_two.http.aclose()
    assert seqs == list(range(start + 1, start + 31))


async def test_redis_restart_mid_stream_loses_nothing(tmp_path: Path) -> None:
    own = RedisServer(tmp_path)
    own.start()
    try:
        with cluster(tmp_path, own.url) as (one, two):
            client = Client(one.url)
            ann, bob = await sign_up(client), await sign_up(client)
            group, start = await create_group(ann, bob)
            listening = asyncio.create_task(_receive(one.url, bob, group, start, 60))
            through_two = Client(two.url, ann.token)
            for phase in ("before", "during", "after"):
                if phase == "during":
                    own.stop()  # sends are still acknowledged: the database has them
                if phase == "after":
                    own.start()
                for n in range(20):
                    await through_two(SEND, input={"conversationId": group, "body": f"{phase}{n}"})
            seqs = await asyncio.wait_for(listening, 60)
            await client.http.aclose()
            await through_two.http.aclose()
    finally:
        own.stop()
    assert seqs == list(range(start + 1, start + 61))


async def test_presence_across_nodes_and_a_node_that_dies(tmp_path: Path) -> None:
    check_redis()
    with cluster(tmp_path, REDIS_URL) as (one, two):
        client = Client(one.url)
        ann, bob = await sign_up(client), await sign_up(client)
        await create_group(ann, bob)
        async with open_socket(one.url, ann.token) as watcher:
            operation = await watcher.subscribe(PRESENCE, {"u": [bob.id]})
            assert (await watcher.data(operation))["presence"]["online"] is False
            # Bob connects to node two ...
            async with open_socket(two.url, bob.token):
                connected_at = datetime.now(UTC)
                assert (await watcher.data(operation, 15))["presence"]["online"] is True
                # ... which dies without a word: his presence lapses all the same.
                await asyncio.sleep(2)  # one presence refresh (TTL 3 s / 3) records lastSeenAt
                two.kill()
                offline = (await watcher.data(operation, 20))["presence"]
                assert offline["online"] is False
                # refreshed while he was there, not just stamped when he came
                last_seen = datetime.fromisoformat(offline["lastSeenAt"])
                assert last_seen > connected_at + timedelta(seconds=0.5)
        await client.http.aclose()


async def test_presence_is_kept_apart_by_namespace() -> None:
    check_redis()
    namespace = f"parley-test-{uuid.uuid4().hex}"
    ours, same, other = (
        RedisPresence(REDIS_URL, ttl_seconds=30, namespace=name)
        for name in (namespace, namespace, namespace + "-other")
    )
    try:
        assert await ours.add(1, "socket") is True
        assert await same.online([1]) == {1: True}
        assert await other.online([1]) == {1: False}  # another deployment's user 1
        assert await ours.remove(1, "socket") is True
        assert await same.online([1]) == {1: False}
    finally:
        for store in (ours, same, other):
            await store.stop()

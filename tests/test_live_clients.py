"""Real client libraries and the edges of a socket's life: token expiry, slow readers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from gql import Client as GqlClient
from gql import GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from websockets.typing import Subprotocol

from tests.backends import database
from tests.client import Client, sign_up
from tests.operations import EVENTS, create_group, send
from tests.server import running_server
from tests.ws import open_socket


async def test_gql_client_over_graphql_transport_ws(client: Client, server_url: str) -> None:
    # given
    ann, bob = await sign_up(client), await sign_up(client)
    group, start = await create_group(ann, bob)
    transport = WebsocketsTransport(
        url=server_url.replace("http://", "ws://") + "/graphql",
        init_payload={"authorization": f"Bearer {bob.token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    received: list[dict[str, Any]] = []
    # when
    async with GqlClient(transport=transport) as session:
        request = GraphQLRequest(EVENTS, variable_values={"id": group, "after": start})
        stream = session.subscribe(request)
        for n in range(3):
            await send(ann, group, f"gql {n}")
        async for result in stream:
            received.append(result["conversationEvents"])
            if len(received) == 3:
                break
    # then
    assert [(e["seq"], e["message"]["body"]) for e in received] == [
        (start + n + 1, f"gql {n}") for n in range(3)
    ]


@pytest.fixture(scope="module")
def short_token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("short-tokens")
    with database(data_dir) as (database_url, broadcast_url):
        with running_server(
            data_dir=data_dir,
            database_url=database_url,
            broadcast_url=broadcast_url,
            extra_env={"ACCESS_TOKEN_TTL_SECONDS": "5"},
        ) as server:
            yield server.url


async def test_socket_closes_with_4403_when_its_token_expires(short_token_server: str) -> None:
    client = Client(short_token_server)
    try:
        ann = await sign_up(client)
        loop = asyncio.get_running_loop()
        async with open_socket(short_token_server, ann.token) as socket:
            opened = loop.time()
            closed = await asyncio.wait_for(socket.closed, 20)
            lasted = loop.time() - opened
    finally:
        await client.http.aclose()
    assert closed.code == 4403
    assert 2 < lasted < 10


async def test_a_slow_reader_neither_slows_others_nor_grows_without_bound(
    client: Client, server_url: str
) -> None:
    # given two readers of one busy conversation; one of them stops reading
    ann, bob = await sign_up(client), await sign_up(client)
    group, start = await create_group(ann, bob)
    url = server_url.replace("http://", "ws://") + "/graphql"
    init = json.dumps(
        {"type": "connection_init", "payload": {"authorization": f"Bearer {bob.token}"}}
    )
    subscribe = json.dumps(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": EVENTS, "variables": {"id": group, "after": start}},
        }
    )
    # It does not read, so it would not see the answers to its own keepalive
    # pings either: without pings, only the server decides what happens to it.
    slow = await websockets.connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], max_queue=1, ping_interval=None
    )
    await slow.send(init)
    await slow.recv()
    await slow.send(subscribe)
    count = 800
    body = "x" * 3000
    async with open_socket(server_url, bob.token) as fast:
        operation = await fast.subscribe(EVENTS, {"id": group, "after": start})
        # when a burst is sent
        senders = [send(ann, group, f"{n} {body}") for n in range(count)]
        for chunk in range(0, count, 50):
            await asyncio.gather(*senders[chunk : chunk + 50])
        # then the reader that reads gets everything, in order
        seqs = [(await fast.data(operation, 30))["conversationEvents"]["seq"] for _ in range(count)]
    assert seqs == list(range(start + 1, start + count + 1))
    # and the slow one, reading at last, gets an unbroken prefix, then is told to
    # resume, or (when the burst outlasts the server's 40 s of keepalive pings,
    # which a peer that reads nothing cannot answer) is dropped as unresponsive
    slow_seqs: list[int] = []
    ending: dict[str, Any] | None = None
    dropped: websockets.ConnectionClosed | None = None
    try:
        while len(slow_seqs) < count:
            message = json.loads(await asyncio.wait_for(slow.recv(), 30))
            if message["type"] != "next" or "errors" in message["payload"]:
                ending = message
                break
            slow_seqs.append(message["payload"]["data"]["conversationEvents"]["seq"])
    except websockets.ConnectionClosed as closed:
        dropped = closed
    finally:
        await slow.close()
    assert slow_seqs == list(range(start + 1, start + 1 + len(slow_seqs)))
    if ending is not None:
        error = ending["payload"]["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["resumeAfterSeq"] == start + len(slow_seqs)
    if dropped is not None:
        assert dropped.rcvd is not None and dropped.rcvd.code == 1011, dropped

"""Fan-out: one group, N subscribers of conversationEvents, M messages sent 4 in flight.

Parley (SQLite + memory://, or PostgreSQL + Redis with --postgres) and the
minimal ASGI broadcaster (bench/broadcaster.py) are measured by the same load
generator in the same run; Parley's figures are also given as ratios to the
broadcaster's. Every subscriber must receive every seq exactly once and in
order, or the run fails. The server runs on core 0, this load generator on
core 1 (where the machine has two).

    .venv/bin/python -m bench.fanout --subscribers 100 500 --messages 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
EVENTS = """
subscription ($id: ID!, $after: Int) {
  conversationEvents(conversationId: $id, afterSeq: $after) {
    seq conversationId at
    ... on MessageAdded { message { id seq body author { id username } createdAt } }
  }
}
"""
SEND = "mutation ($i: SendMessageInput!) { sendMessage(input: $i) { seq } }"
ADD_MEMBERS = """
mutation ($c: ID!, $u: [ID!]!) { addMembers(conversationId: $c, userIds: $u) { id } }
"""
IN_FLIGHT = 4
COLUMNS = (
    "target",
    "subscribers",
    "messages",
    "deliveries_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "loadgen_cpu",
)


@dataclass
class Result:
    target: str
    subscribers: int
    messages: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    loadgen_cpu: float = 0.0  # share of one core the load generator used meanwhile


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(command: list[str], core: int) -> list[str]:
    """The command on one core, where taskset exists and there is more than one."""
    if (os.cpu_count() or 1) > 1 and subprocess.run(
        ["which", "taskset"], capture_output=True
    ).returncode == 0:
        return ["taskset", "-c", str(core), *command]
    return command


@asynccontextmanager
async def serving(command: list[str], env: dict[str, str], health: str) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(*pinned(command, 0), cwd=ROOT, env=env)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(health, timeout=1)).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{command} did not start")
        yield
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def summary(target: str, n: int, m: int, latencies: list[float], span: float) -> Result:
    ordered = sorted(latencies)
    return Result(
        target=target,
        subscribers=n,
        messages=m,
        deliveries_per_s=round(len(latencies) / span),
        p50_ms=round(statistics.median(ordered) * 1000, 1),
        p99_ms=round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        max_ms=round(ordered[-1] * 1000, 1),
    )


async def receive_all(
    connection: ClientConnection, count: int, key: str
) -> list[tuple[int, float]]:
    """(seq, time received) of ``count`` messages; seq read at ``key`` of the payload."""
    got: list[tuple[int, float]] = []
    while len(got) < count:
        message = json.loads(await asyncio.wait_for(connection.recv(), 60))
        seq = _seq(message, key)
        if seq is not None:
            got.append((seq, time.monotonic()))
    return got


def _seq(message: dict[str, Any], key: str) -> int | None:
    if key == "broadcast":
        return int(message["seq"])
    if message.get("type") != "next":
        if message.get("type") in ("error", "complete"):
            raise RuntimeError(f"subscription ended: {message}")
        return None
    return int(message["payload"]["data"]["conversationEvents"]["seq"])


def check_and_measure(
    target: str, received: list[list[tuple[int, float]]], sent: dict[int, float], first: float
) -> Result:
    expected = sorted(sent)
    latencies: list[float] = []
    for one in received:
        seqs = [seq for seq, _ in one]
        if seqs != expected:
            raise RuntimeError(f"{target}: a subscriber got {seqs[:10]}… not {expected[:10]}…")
        latencies += [at - sent[seq] for seq, at in one]
    span = max(at for one in received for _, at in one) - first
    return summary(target, len(received), len(sent), latencies, span)


async def bench_broadcaster(n: int, m: int) -> Result:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ}
    command = [sys.executable, "-m", "bench.broadcaster", str(port)]
    async with serving(command, env, url + "/"):
        sockets = [await websockets.connect(url.replace("http", "ws") + "/") for _ in range(n)]
        await asyncio.sleep(0.5)
        receivers = [asyncio.create_task(receive_all(s, m, "broadcast")) for s in sockets]
        sent: dict[int, float] = {}
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            first = time.monotonic()
            for start in range(0, m, IN_FLIGHT):
                batch = range(start + 1, min(m, start + IN_FLIGHT) + 1)
                for seq in batch:
                    sent[seq] = time.monotonic()
                await asyncio.gather(
                    *(
                        http.post("/", content=json.dumps({"seq": seq, "body": "x" * 40}))
                        for seq in batch
                    )
                )
        received = await asyncio.gather(*receivers)
        for s in sockets:
            await s.close()
    return check_and_measure("broadcaster", received, sent, first)


async def _call(http: httpx.AsyncClient, token: str | None, query: str, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    ).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def _register(http: httpx.AsyncClient) -> tuple[str, str]:
    data = await _call(
        http,
        None,
        "mutation ($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
        i={"username": f"b{uuid.uuid4().hex[:12]}", "password": "bench-password"},
    )
    return data["register"]["accessToken"], data["register"]["user"]["id"]


async def bench_parley(n: int, m: int, *, postgres: bool) -> Result:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "DATA_DIR": data_dir, "PORT": str(port), "LOG_LEVEL": "warning"}
        database = None
        if postgres:
            database = f"parley_bench_{uuid.uuid4().hex[:8]}"
            await _run("createdb", "-h", "127.0.0.1", "-U", "postgres", database)
            env.update(
                DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
                BROADCAST_URL="redis://127.0.0.1:6379",
                AUTO_MIGRATE="true",
            )
        try:
            async with serving([sys.executable, "main.py"], env, url + "/health"):
                return await _run_parley(url, n, m)
        finally:
            if database is not None:
                await _run("dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", database)


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command)
    if await process.wait() != 0:
        raise RuntimeError(f"{command} failed")


async def _run_parley(url: str, n: int, m: int) -> Result:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        owner, _ = await _register(http)
        members: list[tuple[str, str]] = []
        for start in range(0, n, 20):
            members += await asyncio.gather(*(_register(http) for _ in range(min(20, n - start))))
        group = (
            await _call(http, owner, 'mutation { createGroup(input: {title: "bench"}) { id } }')
        )["createGroup"]["id"]
        for start in range(0, n, 100):
            ids = [user_id for _, user_id in members[start : start + 100]]
            await _call(
                http,
                owner,
                ADD_MEMBERS,
                c=group,
                u=ids,
            )
        after = (
            await _call(
                http, owner, "query ($id: ID!) { conversation(id: $id) { lastSeq } }", id=group
            )
        )["conversation"]["lastSeq"]
        sockets: list[ClientConnection] = []
        for token, _ in members:
            connection = await websockets.connect(
                url.replace("http", "ws") + "/graphql",
                subprotocols=[Subprotocol("graphql-transport-ws")],
                max_size=None,
            )
            await connection.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                )
            )
            await connection.recv()
            await connection.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": EVENTS, "variables": {"id": group, "after": after}},
                    }
                )
            )
            sockets.append(connection)
        await asyncio.sleep(1.0)  # every subscription live before the first send
        receivers = [asyncio.create_task(receive_all(s, m, "graphql")) for s in sockets]
        sent: dict[int, float] = {}
        first = time.monotonic()
        for start in range(0, m, IN_FLIGHT):
            count = min(IN_FLIGHT, m - start)
            began = time.monotonic()
            results = await asyncio.gather(
                *(
                    _call(http, owner, SEND, i={"conversationId": group, "body": "x" * 40})
                    for _ in range(count)
                )
            )
            for result in results:
                sent[int(result["sendMessage"]["seq"])] = began
        received = await asyncio.gather(*receivers)
        for s in sockets:
            await s.close()
    return check_and_measure("parley", received, sent, first)


async def measured(run: Coroutine[Any, Any, Result]) -> Result:
    """The result, with the load generator's CPU use over the whole run (a load
    generator near 1.0 is the bottleneck, and the figure says less of the server)."""
    cpu, wall = time.process_time(), time.monotonic()
    result = await run
    result.loadgen_cpu = round((time.process_time() - cpu) / (time.monotonic() - wall), 2)
    return result


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite"
    )
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    rows: list[dict[str, Any]] = []
    for n in args.subscribers:
        baseline = await measured(bench_broadcaster(n, args.messages))
        parley = await measured(bench_parley(n, args.messages, postgres=args.postgres))
        for result in (baseline, parley):
            row = asdict(result)
            row["ratio"] = round(result.deliveries_per_s / baseline.deliveries_per_s, 3)
            rows.append(row)
    print(" ".join(f"{name:>16}" for name in (*COLUMNS, "ratio")))
    for row in rows:
        print(" ".join(f"{row[name]!s:>16}" for name in (*COLUMNS, "ratio")))
    print(json.dumps({"scenario": "fanout", "postgres": args.postgres, "rows": rows}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

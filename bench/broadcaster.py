"""The live baseline: a minimal ASGI WebSocket broadcaster on uvicorn.

No GraphQL, no database, no authentication. Sockets open ``/r/<room>``;
``POST /r/<room>`` with ``{"body": ...}`` takes the room's next seq, builds
one frame of the shape Parley sends for a new message (a graphql-transport-ws
``next`` with the fields bench/loadgen subscribes to), serialises it once,
queues it for every socket of the room and answers ``{"seq": n}``. Each
socket has its own queue and writer, so every socket gets every frame once
and in seq order however the requests interleave. ``GET /health`` answers
200. It is the limit Parley's live scenarios (fanout, rooms, idle, soak) are
measured against.

    python -m bench.broadcaster PORT
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

rooms: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)
seqs: defaultdict[str, int] = defaultdict(int)


def _room(path: str) -> str | None:
    if path.startswith("/r/") and len(path) > 3:
        return path[3:]
    return None


def frame(room: str, seq: int, body: str) -> str:
    """The text every socket of the room receives: one serialisation per publish."""
    at = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "id": "1",
            "type": "next",
            "payload": {
                "data": {
                    "conversationEvents": {
                        "seq": seq,
                        "conversationId": f"R3JvdXA6{room}",
                        "at": at,
                        "message": {
                            "id": f"TWVzc2FnZTo{seq}",
                            "seq": seq,
                            "body": body,
                            "author": {"id": "VXNlcjox", "username": "bench-sender"},
                            "createdAt": at,
                        },
                    }
                }
            },
        }
    )


async def _socket(room: str, receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def writer() -> None:
        while True:
            await send({"type": "websocket.send", "text": await queue.get()})

    writing = asyncio.create_task(writer())
    rooms[room].add(queue)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        rooms[room].discard(queue)
        if not rooms[room]:
            del rooms[room]
        writing.cancel()


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    room = _room(scope["path"])
    if scope["method"] == "POST" and room is not None:
        seqs[room] += 1
        seq = seqs[room]
        text = frame(room, seq, str(json.loads(body)["body"]))
        for queue in rooms.get(room, ()):
            queue.put_nowait(text)
        status, answer = 200, json.dumps({"seq": seq}).encode()
    elif scope["method"] == "GET" and scope["path"] == "/health":
        status, answer = 200, b'{"status":"ok"}'
    else:
        status, answer = 404, b"{}"
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        room = _room(scope["path"])
        if room is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        await _socket(room, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


if __name__ == "__main__":
    # The same uvicorn settings as Parley's main.py.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        ws_ping_interval=20,
        ws_ping_timeout=20,
        log_level="warning",
    )

"""The data every scenario shares, made once per run through Parley's own API.

Users are registered in parallel batches (argon2 makes each registration
cost tens of milliseconds), once, and reused by every scenario; the server
keeps them on disk (or in PostgreSQL) between the scenarios' restarts.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.processes import BenchFailure

REGISTER = "mutation ($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"
CREATE_GROUP = "mutation ($i: CreateGroupInput!) { createGroup(input: $i) { id } }"
ADD_MEMBERS = (
    "mutation ($c: ID!, $u: [ID!]!) { addMembers(conversationId: $c, userIds: $u) { id } }"
)
SEND = "mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id seq } }"
REACT = "mutation ($m: ID!, $e: String!) { addReaction(messageId: $m, emoji: $e) { id } }"
EMOJI = ["👍", "❤️", "😂", "🎉", "👀"]
HISTORY_MESSAGES = 60
BATCH = 16  # registrations in flight


@dataclass(frozen=True)
class User:
    token: str
    id: str


@dataclass(frozen=True)
class Room:
    id: str
    sender: User
    members: list[User]


@dataclass
class World:
    users: list[User] = field(default_factory=list)
    crowd: Room | None = None  # one group of every user: fanout and idle
    rooms: list[Room] = field(default_factory=list)  # many small groups: rooms and soak
    history: Room | None = None  # 60 messages with replies and reactions
    sending: Room | None = None  # the group the send scenario writes to

    def user(self, index: int) -> User:
        return self.users[index % len(self.users)]


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, token: str | None, query: str, **variables: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise BenchFailure(f"setting up: {body.get('errors', body)}")
        return body["data"]

    async def register(self) -> User:
        name = f"b{uuid.uuid4().hex[:12]}"
        data = await self.call(None, REGISTER, i={"username": name, "password": "bench-password"})
        return User(token=data["register"]["accessToken"], id=data["register"]["user"]["id"])

    async def group(self, owner: User, members: list[User], title: str) -> Room:
        others = list({m.id: m for m in members if m.id != owner.id}.values())
        data = await self.call(
            owner.token, CREATE_GROUP, i={"title": title, "memberIds": [m.id for m in others[:100]]}
        )
        group_id = data["createGroup"]["id"]
        for start in range(100, len(others), 100):
            ids = [m.id for m in others[start : start + 100]]
            await self.call(owner.token, ADD_MEMBERS, c=group_id, u=ids)
        return Room(id=group_id, sender=owner, members=[owner, *others])


async def seed(url: str, *, users: int, rooms: int, room_size: int) -> World:
    world = World()
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        api = Api(http)
        for start in range(0, users, BATCH):
            count = min(BATCH, users - start)
            world.users += await asyncio.gather(*(api.register() for _ in range(count)))
        world.crowd = await api.group(world.users[0], world.users, "crowd")
        world.rooms = list(
            await asyncio.gather(
                *(
                    api.group(
                        world.user(i * room_size),
                        [world.user(i * room_size + k) for k in range(room_size)],
                        f"room {i}",
                    )
                    for i in range(rooms)
                )
            )
        )
        world.sending = await api.group(
            world.users[0], [world.user(k) for k in range(16)], "sending"
        )
        world.history = await _history(api, [world.user(k) for k in range(5)])
    return world


async def _history(api: Api, people: list[User]) -> Room:
    """A group of five with 60 messages by all of them, a third of them replies, and reactions."""
    room = await api.group(people[0], people, "history")
    sent: list[str] = []
    # In rounds of ten sent at once; each reply answers a message of an earlier round.
    for start in range(0, HISTORY_MESSAGES, 10):
        messages: list[dict[str, Any]] = []
        for i in range(start, min(start + 10, HISTORY_MESSAGES)):
            message: dict[str, Any] = {
                "conversationId": room.id,
                "body": f"message {i} " + "x" * 60,
            }
            if i % 3 == 2 and sent:
                message["replyToId"] = sent[(i * 7) % len(sent)]
            messages.append(message)
        answers = await asyncio.gather(
            *(
                api.call(people[(start + k) % len(people)].token, SEND, i=message)
                for k, message in enumerate(messages)
            )
        )
        sent += [answer["sendMessage"]["id"] for answer in answers]
    await asyncio.gather(
        *(
            api.call(people[(i + k) % len(people)].token, REACT, m=message_id, e=EMOJI[k])
            for i, message_id in enumerate(sent)
            for k in range(i % 3)
        )
    )
    return room

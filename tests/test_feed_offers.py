"""A message sent in this process reaches the process's feed as made, without
being read back, and exactly as reading it back would have shown it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from resolvers.live.feeds import Feed
from resolvers.live.snapshots import SharedEvent, load_events
from schema.ids import decode_conversation_id, decode_global_id
from tests.client import sign_up
from tests.inprocess import InProcess, in_process
from tests.operations import create_group, send


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path) as app:
        yield app


def columns(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def as_values(event: SharedEvent) -> dict[str, Any]:
    """What an event shows, rows as their column values: its message, the message
    that replies to, their authors and reactions (an event read in a batch holds
    the batch's rows too)."""
    message = event.message
    shown = {message.id, message.reply_to_id} - {None} if message is not None else set()
    messages = {key: row for key, row in event.messages.items() if key in shown}
    people = {row.author_id for row in messages.values()} | {event.actor_id}
    return {
        "conversation_id": event.conversation_id,
        "seq": event.seq,
        "kind": event.kind,
        "at": event.at,
        "actor_id": event.actor_id,
        "message_id": event.message_id,
        "payload": event.payload,
        "conversation": columns(event.conversation),
        "messages": {key: columns(row) for key, row in messages.items()},
        "users": {key: columns(row) for key, row in event.users.items() if key in people},
        "reactions": {key: value for key, value in event.reactions.items() if key in shown},
    }


async def loaded_through(feed: Feed, seq: int) -> None:
    async with asyncio.timeout(10):
        await feed.wait_beyond(seq - 1)


async def read_back(app: InProcess, conversation_id: int, seq: int) -> SharedEvent:
    async with app.services.short_session() as session:
        (event,) = await load_events(
            session, conversation_id=conversation_id, after_seq=seq - 1, limit=1
        )
    return event


async def test_a_sent_message_reaches_the_feed_unread_and_as_read_back(app: InProcess) -> None:
    # given a group this process follows
    ann, bob = await sign_up(app.client), await sign_up(app.client)
    group, _ = await create_group(ann, bob, title="Offers")
    conversation_id, _ = decode_conversation_id(group)
    async with app.services.feeds.follow(conversation_id) as feed:
        app.counter.statements.clear()
        # when Ann sends
        sent = await send(ann, group, "made, not read")
        await loaded_through(feed, sent["seq"])
        # then the feed holds it and read no event back
        assert not [s for s in app.counter.statements if "FROM events" in s]
        (event,) = feed.after(sent["seq"] - 1) or []
        assert event.message is not None
        assert event.message.id == decode_global_id(sent["id"])[1]
        # and it is what reading it back shows
        assert as_values(event) == as_values(await read_back(app, conversation_id, sent["seq"]))


async def test_a_reply_is_read_back_and_shows_what_it_replies_to(app: InProcess) -> None:
    # given
    ann, bob = await sign_up(app.client), await sign_up(app.client)
    group, _ = await create_group(ann, bob, title="Replies")
    conversation_id, _ = decode_conversation_id(group)
    first = await send(bob, group, "first")
    async with app.services.feeds.follow(conversation_id) as feed:
        # when Ann replies
        reply = await send(ann, group, "a reply", replyToId=first["id"])
        await loaded_through(feed, reply["seq"])
        # then the feed's event holds both messages and both authors
        (event,) = feed.after(reply["seq"] - 1) or []
        assert event.message is not None
        assert event.message.reply_to_id in event.messages
        assert len(event.users) == 2
        assert as_values(event) == as_values(await read_back(app, conversation_id, reply["seq"]))


async def test_concurrent_sends_reach_the_feed_once_each_in_order_as_read_back(
    app: InProcess,
) -> None:
    # given a group of four this process follows
    people = [await sign_up(app.client) for _ in range(4)]
    group, _ = await create_group(people[0], *people[1:], title="Busy")
    conversation_id, _ = decode_conversation_id(group)
    async with app.services.feeds.follow(conversation_id) as feed:
        start = feed.loaded_through
        # when they send 40 messages, 16 at a time, replies among them
        first = await send(people[0], group, "first")
        limit = asyncio.Semaphore(16)

        async def one(i: int) -> dict[str, Any]:
            async with limit:
                extra = {"replyToId": first["id"]} if i % 5 == 0 else {}
                return await send(people[i % 4], group, f"m{i}", **extra)

        sent = await asyncio.gather(*(one(i) for i in range(40)))
        last = max(m["seq"] for m in sent)
        await loaded_through(feed, last)
        # then the feed holds every seq once, in order, each as read back
        # (the conversation as its write left it, which the later ones moved on)
        held = feed.after(start) or []
        assert [event.seq for event in held] == list(range(start + 1, last + 1))
        for event in held:
            assert settled(event) == settled(await read_back(app, conversation_id, event.seq))


def settled(event: SharedEvent) -> dict[str, Any]:
    """What an event shows, but the conversation's seq and activity time, which move on."""
    values = as_values(event)
    assert values["conversation"].pop("last_seq") >= event.seq
    del values["conversation"]["last_activity_at"]
    return values
